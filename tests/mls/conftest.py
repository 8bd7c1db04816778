"""Shared state for the MLS tests: the per-file vector tallies printed in the terminal summary."""

from __future__ import annotations

from mls_vector_cases import VECTOR_TALLY


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook signature
    if not VECTOR_TALLY:
        return
    terminalreporter.section("RFC 9420 test vectors (pass/total per file)")
    for name in sorted(VECTOR_TALLY):
        passed, total, skipped = VECTOR_TALLY[name]
        note = f", {skipped} skipped: cipher suite not provided" if skipped else ""
        terminalreporter.write_line(f"{name + '.json':40s} {passed}/{total}{note}")
