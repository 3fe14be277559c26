"""The GitHub workflows parse, trigger where they should and run make targets that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop("on", None) or data.pop(True)  # YAML 1.1 reads a bare `on` as true
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", text, re.M))


def test_every_workflow_parses_and_runs_existing_make_targets():
    names = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
    assert names == ["ci.yml", "leaderboards.yml", "release.yml"]
    targets = make_targets()
    for name in ("ci.yml", "leaderboards.yml"):  # release.yml builds without the dev venv
        runs = " ".join(step.get("run", "") for step in steps(load(name)))
        used = re.findall(r"\bmake ([A-Za-z0-9_.-]+)", runs)
        assert used, name
        assert set(used) <= targets, (name, set(used) - targets)


def test_ci_runs_make_test_on_pushes_and_pull_requests_for_three_pythons():
    ci = load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    (job,) = ci["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.10", "3.11", "3.12"]
    setup = next(
        s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")
    )
    assert setup["with"]["cache"] == "pip"
    runs = [s.get("run", "") for s in job["steps"]]
    assert any("download.pytorch.org/whl/cpu" in r for r in runs)  # CPU torch, in CI only
    assert runs[-1].strip() == "make test"
    assert "download.pytorch.org" not in (ROOT / "Makefile").read_text()


def test_leaderboards_regenerate_on_records_claims_and_resources_and_fail_on_a_diff():
    boards = load("leaderboards.yml")
    for event in ("push", "pull_request"):
        paths = boards["on"][event]["paths"]
        assert {"results/**", "leaderboards/**", "nlbench/resources/**"} <= set(paths)
    runs = [s.get("run", "") for s in steps(boards)]
    regen = next(i for i, r in enumerate(runs) if "make leaderboards" in r)
    assert any("git diff --exit-code" in r for r in runs[regen + 1 :])


def test_make_test_is_the_fast_suite_and_checks_the_boards():
    text = (ROOT / "Makefile").read_text()
    found = re.search(r"^test: .*\n((?:\t.*\n)+)", text, re.M)
    assert found is not None, "the Makefile has a test target"
    recipe = found.group(1)
    assert "not slow and not gpu" in recipe and "leaderboard" in recipe and "--check" in recipe


def test_release_publishes_checked_builds_on_a_version_tag_by_trusted_publishing():
    release = load("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    build, publish = release["jobs"]["build"], release["jobs"]["publish"]
    runs = " ".join(s.get("run", "") for s in build["steps"])
    assert "python -m build" in runs and "twine check --strict" in runs
    assert "GITHUB_REF_NAME" in runs  # the tag must be the package version
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    uses = [s.get("uses", "") for s in publish["steps"]]
    assert any(u.startswith("pypa/gh-action-pypi-publish") for u in uses)
    assert not any("password" in s.get("with", {}) for s in publish["steps"])  # no token
