"""Every optional feature of the manifest vocabulary gates the checks that need it, and the docs say
exactly which features gate nothing yet (docs/sut-manifest.md, "features")."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.harness.manifest import FEATURES, REFERENCE_FEATURES, reference_manifest
from conformance.plugin import SCENARIOS_DIR

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
MUST_ID = "PROTO-TRANSPORT-FROM-ADDR-SPEC"

# Features no check needs yet. Adding a check for one of them must also update this set and the
# sentence in docs/sut-manifest.md, so that the promise stays exact.
GATING_NOTHING = {"ohttp", "franking", "reportAbuse", "semiPrivateMessage"}
# The reference SUT does not implement minimal metadata rooms: their check is NOT_APPLICABLE there.
NOT_IN_THE_REFERENCE = {"minimalMetadataRooms"}

# Checks whose subject is an optional feature: (where, check name pattern) -> the feature they must carry.
MUST_CARRY = [
    ("test_discovery.py", r"test_identifier_query_|test_deleted_user_is_no_longer_found", "identifierQuery"),
    ("test_privacy.py", r"test_proxy_download_", "proxyDownload"),
    ("test_privacy.py", r"test_minimal_metadata_", "minimalMetadataRooms"),
    ("test_multi_device.py", r"test_", "multiDevice"),
    ("test_hub_transfer_", r"test_", "hubTransfer"),
]


@pytest.fixture(scope="module")
def inventory(tmp_path_factory) -> list[dict]:
    """Every check (ID, requirements, role, area, features), collected without running it."""
    out = tmp_path_factory.mktemp("inventory") / "inventory.json"
    argv = [sys.executable, "-m", "pytest", str(SCENARIOS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider",
            f"--rootdir={ROOT}", "--mimi-inventory", str(out)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)  # noqa: S603
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text())


def gated_features(inventory: list[dict]) -> set[str]:
    return {feature for check in inventory for feature in check["features"]}


def test_every_feature_gates_a_check_except_those_no_check_needs_yet(inventory):
    assert set(FEATURES) - gated_features(inventory) == GATING_NOTHING


@pytest.mark.parametrize(("module", "pattern", "feature"), MUST_CARRY,
                         ids=[f"{feature}:{module}" for module, _, feature in MUST_CARRY])
def test_checks_of_an_optional_feature_carry_its_marker(inventory, module, pattern, feature):
    checks = [c for c in inventory if Path(c["id"].split("::")[0]).name.startswith(module)
              and re.match(pattern, c["id"].split("::")[-1])]
    assert checks, f"no check matches {module} {pattern}"
    unmarked = [c["id"] for c in checks if feature not in c["features"]]
    assert unmarked == []


def test_the_reference_sut_declares_every_feature_it_implements_so_its_checks_run(inventory):
    assert set(reference_manifest().features) == set(REFERENCE_FEATURES)
    assert gated_features(inventory) - set(REFERENCE_FEATURES) == NOT_IN_THE_REFERENCE


def test_the_manifest_guide_names_the_features_that_gate_nothing(inventory):
    guide = (ROOT / "docs" / "sut-manifest.md").read_text(encoding="utf-8")
    row = next(line for line in guide.splitlines() if line.startswith("| `features` |"))
    gating, _, rest = row.partition("no check needs")
    assert {f for f in FEATURES if f"`{f}`" in rest} == GATING_NOTHING
    today = gating.partition("today")[2]
    assert {f for f in FEATURES if f"`{f}`" in today} == gated_features(inventory)


def test_a_check_needing_an_undeclared_feature_is_not_applicable_naming_it(pytester, tmp_path):
    pytester.makepyfile(test_features=f"""
        import pytest
        from conformance.verdicts import observed

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.feature("franking")
        def test_needs_franking():
            raise AssertionError("must not run")

        @pytest.mark.requirements("{MUST_ID}")
        @pytest.mark.feature("identifierQuery")
        def test_needs_a_declared_feature():
            observed("{MUST_ID}", "ran")
    """)
    out = tmp_path / "r.jsonl"
    result = pytester.runpytest("--sut", "reference", "--mimi-results", str(out), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    checks = {json.loads(line)["check_id"].split("::")[-1]: json.loads(line) for line in out.read_text().splitlines()[1:]}
    assert checks["test_needs_franking"]["verdict"] == "NOT_APPLICABLE"
    assert "franking" in checks["test_needs_franking"]["message"]
    assert "missing_operation" not in checks["test_needs_franking"]
    assert checks["test_needs_a_declared_feature"]["verdict"] == "PASS"
