"""The variant matrix: the suite against the reference SUT with every allowed variant on.

An allowed variant (``reference_peer.faults.VARIANTS``) is a behaviour the draft permits that differs
from the reference default; a check that reports a miss for it judges the reference peer, not the draft.
This is ``mimi-conformance selftest --variants`` as a test: all variants together in ONE suite run (they
are independent behaviours); only when that run has false verdicts are subsets rerun, restricted to the
modules concerned, to find the variants causing them (``conformance.selftest.attribute``). The goal is
specificity 100%: no variant with a false verdict (FAIL, WARN, HARNESS_ERROR, AMBIGUOUS naming an AMB-
ID the variants do not cite, NOT_APPLICABLE "nothing was observed", a check without a result).
"""

from __future__ import annotations

import pytest

from conformance.selftest import GOAL_SPECIFICITY, render_variants, variant_matrix
from reference_peer.faults import VARIANTS

# The CI matrix runs every variant: specificity 100% over all of them is the goal (issue 15).
MATRIX_VARIANTS = sorted(VARIANTS)


class _Summary:
    """Prints the matrix in the terminal summary, where output capture cannot swallow it."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def pytest_terminal_summary(self, terminalreporter) -> None:
        for text in self.texts:
            terminalreporter.write_sep("=", "variant matrix")
            terminalreporter.write_line(text)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, pytestconfig, selftest_parallel):
    summary = _Summary()
    pytestconfig.pluginmanager.register(summary, "mimi-variant-matrix-summary")
    result = variant_matrix(tmp_path_factory.mktemp("variants"), variant_names=MATRIX_VARIANTS,
                            parallel=selftest_parallel)
    summary.texts.append(render_variants(result))
    return result


def test_every_variant_is_in_the_matrix(matrix) -> None:
    assert {r.variant for r in matrix.rows} == set(MATRIX_VARIANTS)
    assert set(matrix.combined.variants) == set(MATRIX_VARIANTS), "the combined run switches every variant on"
    assert matrix.combined.verdicts, f"the combined run produced no results (see {matrix.combined.out}/pytest.log)"


def test_no_variant_causes_a_false_verdict(matrix) -> None:
    charged = {r.variant: [str(v) for v in r.false] for r in matrix.rows if not r.specific}
    assert matrix.specificity >= GOAL_SPECIFICITY, (
        f"specificity {matrix.specificity:.1%}: false verdicts under permitted behaviours: {charged}")


def test_a_false_verdict_is_never_the_reference_defaults(matrix) -> None:
    without = [str(v) for v in matrix.attribution.without_variants] if matrix.attribution else []
    assert not without, f"false verdicts of the combined run that the reference default also gives: {without}"
