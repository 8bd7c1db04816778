#!/bin/sh
# Run mimi-conformance against a SUT and publish its reports; the CI example (mimi-conformance.yml)
# runs this script, and so does the suite's own packaging test, from an installed wheel.
#
# Usage: run-conformance.sh MANIFEST OUT_DIR [more `mimi-conformance run` options...]
#   MANIFEST  the SUT manifest (docs/sut-manifest.md), or `reference` for the embedded reference SUT
#   OUT_DIR   where the reports go: results.json, junit.xml, report.html, summary.md, badges/
# Trailing options go to `mimi-conformance run` as given (e.g. --profile, --baseline, --seed, -n).
#
# Exit code: mimi-conformance's own. 0 conformant (the gate passed), 1 not conformant (or the run
# crashed), 2 a usage or setup error (bad manifest, suite PKI, SUT not started or unreachable: the
# message says the fix; no checks ran, no reports). `run` does the preflight of a vendor's SUT first.
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 MANIFEST OUT_DIR [mimi-conformance run options...]" >&2
    exit 2
fi
manifest=$1
out=$2
shift 2

status=0
mimi-conformance run --sut "$manifest" --out "$out" "$@" || status=$?

# Publish: summary.md goes to the job summary when GitHub Actions provides one (the run already
# printed its verdicts to the log); the workflow uploads the whole folder. After exit 2 any
# summary.md in OUT_DIR is an older run's: the run's own message above is what to read.
if [ "$status" -ne 2 ] && [ -f "$out/summary.md" ]; then
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
        cat "$out/summary.md" >>"$GITHUB_STEP_SUMMARY"
    fi
    echo "mimi-conformance: reports in $out (results.json, junit.xml, report.html, summary.md, badges/)"
else
    echo "mimi-conformance: no reports written (exit $status); see the message above" >&2
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
    echo "exit-code=$status" >>"$GITHUB_OUTPUT"
fi
exit "$status"
