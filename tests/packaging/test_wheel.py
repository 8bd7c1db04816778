"""The suite as a vendor gets it: a wheel installed into a fresh virtual environment, run from a folder
outside the checkout through the CI example's script (docs/ci/run-conformance.sh).

The end-to-end test is marked ``packaging`` (``pytest -m packaging`` runs only it). It builds the
wheel, creates a venv and installs the wheel with its dependencies from the package index this machine
uses, caching nothing between runs; it takes about a minute and is not skipped in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CI_DIR = REPO_ROOT / "docs" / "ci"
CI_SCRIPT = CI_DIR / "run-conformance.sh"
CI_WORKFLOW = CI_DIR / "mimi-conformance.yml"
# What a wheel is built from (the sdist's content). Built from a copy, because pip builds in place
# and setuptools' build/ folder keeps files of earlier builds (a deleted module would still ship).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "conformance", "reference_peer", "reports", "profiles")
NOT_BUILD_INPUTS = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
TRANSPORT_CHECK_PREFIX = "conformance/scenarios/test_transport.py::"


def _pyproject() -> dict:
    with (REPO_ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def test_every_package_of_the_source_tree_is_packaged() -> None:
    # pyproject.toml lists the packages (setuptools' find cannot add the mapped profiles package),
    # so a new package left out of the list would be missing from the wheel only.
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    in_tree = {
        ".".join(init.parent.relative_to(REPO_ROOT).parts)
        for top in ("conformance", "reference_peer", "reports")
        for init in (REPO_ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert in_tree - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"


def test_ci_workflow_runs_a_pinned_suite_through_the_script() -> None:
    workflow = yaml.safe_load(CI_WORKFLOW.read_text(encoding="utf-8"))
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as "on".
    assert workflow.get("on", workflow.get(True)), "the workflow has no trigger"
    pinned = workflow["env"]["MIMI_CONFORMANCE_VERSION"]
    assert pinned == _pyproject()["project"]["version"], "pin the example to the version this tree builds"
    (job,) = workflow["jobs"].values()
    for step in job["steps"]:
        assert ("run" in step) != ("uses" in step), f"a step has neither or both of run/uses: {step}"
        if "uses" in step:
            assert "@" in step["uses"], f"an action is not pinned to a version: {step['uses']}"
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert 'pip install "mimi-conformance==${MIMI_CONFORMANCE_VERSION}"' in runs
    assert f"ci/{CI_SCRIPT.name} " in runs
    subprocess.run(["sh", "-n", str(CI_SCRIPT)], check=True)


def _copy_build_inputs(destination: Path) -> None:
    destination.mkdir()
    for name in BUILD_INPUTS:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=NOT_BUILD_INPUTS)
        else:
            shutil.copy2(source, destination / name)


def _data_files(source: Path) -> set[str]:
    """Every file of the packages that is neither Python nor a README (notes for developers, never
    read at run time), named as the wheel names it (profiles/ ships as conformance/bundled_profiles/)."""
    names = set()
    for top, installed_as in (("conformance", "conformance"), ("reference_peer", "reference_peer"),
                              ("reports", "reports"), ("profiles", "conformance/bundled_profiles")):
        for path in (source / top).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc", ".md") and "__pycache__" not in path.parts:
                names.add(f"{installed_as}/{path.relative_to(source / top).as_posix()}")
    return names


def _clean_env(venv: Path) -> dict[str, str]:
    """The environment of a vendor's shell with only the fresh venv on PATH: nothing leaks in from the
    checkout's venv or from this pytest run."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME") and not key.startswith(("PYTEST_", "MIMI_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_NO_CACHE_DIR"] = "1"
    return env


@pytest.mark.packaging
def test_installed_wheel_runs_the_ci_script_outside_the_checkout(tmp_path: Path) -> None:
    source, wheels, venv, work = (tmp_path / name for name in ("source", "wheels", "venv", "work"))
    _copy_build_inputs(source)
    env = _clean_env(venv)

    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(wheels), str(source)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    # The PEP 639 license fields and the listed data folders keep setuptools quiet.
    for noise in ("SetuptoolsDeprecationWarning", "BuildBackendWarning"):
        assert noise not in built.stdout + built.stderr
    (wheel,) = wheels.glob("mimi_conformance-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        missing = _data_files(source) - set(archive.namelist())
    assert not missing, "data files left out of the wheel: add them to [tool.setuptools.package-data]"

    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir", str(wheel)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    work.mkdir()
    where = subprocess.run(
        ["python", "-c", "import conformance; print(conformance.__file__)"],
        capture_output=True, text=True, env=env, cwd=work, check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), "the suite was imported from outside the fresh venv"

    version = subprocess.run(["mimi-conformance", "--version"], capture_output=True, text=True, env=env, cwd=work)
    assert version.returncode == 0, version.stderr
    assert version.stdout.splitlines()[0] == f"mimi-conformance {_pyproject()['project']['version']}"
    assert "draft-ietf-mimi-protocol-06" in version.stdout

    # `-k transport` leaves most profile requirements UNTESTED, so the profiles are INCOMPLETE (exit 1
    # without more). --allow-untested exits 0 when that is the only reason, while a FAIL, a
    # HARNESS_ERROR, a crash or a usage error still exits non-zero: exit 0 is the strict assertion.
    run = subprocess.run(
        ["sh", str(CI_SCRIPT), "reference", "results", "-k", "transport", "--allow-untested"],
        capture_output=True, text=True, env=env, cwd=work, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((work / "results" / "results.json").read_text(encoding="utf-8"))
    checks = results["checks"]
    assert checks, "no check ran"
    assert all(check["check_id"].startswith(TRANSPORT_CHECK_PREFIX) for check in checks)
    assert {check["check_id"]: check["verdict"] for check in checks if check["verdict"] != "PASS"} == {}
    assert results["suite_version"] == _pyproject()["project"]["version"]
