"""The GitHub workflows and the composite action under .github/: well-formed, least-privilege,
every third-party action pinned by a full commit SHA, no template expansion inside scripts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

GITHUB = Path(__file__).resolve().parents[1] / ".github"
WORKFLOWS = sorted([*GITHUB.glob("workflows/*.yml"), *GITHUB.glob("examples/*.yml")])
ACTIONS = sorted(GITHUB.glob("actions/*/action.yml"))
PINNED = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}")
# Expressions a script must not expand in place (their values are chosen by whoever opens an
# issue, names a branch or passes an input): pass them through env: instead.
INJECTABLE = re.compile(r"\$\{\{\s*(inputs|github\.event|github\.head_ref|steps)\b")
PERMISSIONS = {
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "id-token",
    "issues",
    "packages",
    "pages",
    "pull-requests",
    "security-events",
    "statuses",
}


def load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    return document


def steps_of(document: dict[Any, Any]) -> list[dict[str, Any]]:
    if "runs" in document:
        return list(document["runs"]["steps"])
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def test_the_expected_files_exist() -> None:
    names = {p.relative_to(GITHUB).as_posix() for p in [*WORKFLOWS, *ACTIONS]}
    assert names == {
        "workflows/ci.yml",
        "examples/train-gate.yml",
        "examples/release.yml",
        "actions/verify/action.yml",
    }


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_structure_and_permissions(path: Path) -> None:
    document = load(path)
    # YAML 1.1 reads the key "on" as true; GitHub reads it as "on".
    triggers = document.get("on", document.get(True))
    assert triggers, f"{path.name}: no triggers"
    assert document.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    assert document["jobs"]
    for name, job in document["jobs"].items():
        assert job.get("runs-on"), f"{name}: runs-on"
        assert job.get("timeout-minutes"), f"{name}: a timeout"
        granted = job.get("permissions")
        assert isinstance(granted, dict) and granted, f"{name}: grant permissions per job"
        assert set(granted) <= PERMISSIONS
        assert set(granted.values()) <= {"read", "write"}
        steps = job["steps"]
        assert steps and all(("uses" in s) != ("run" in s) for s in steps), name
        if "id-token" in granted:  # only jobs that sign keylessly
            assert "--sigstore" in path.read_text()
    for step in steps_of(document):
        if "uses" in step and step["uses"].startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", ACTIONS, ids=lambda p: p.parent.name)
def test_composite_action_structure(path: Path) -> None:
    document = load(path)
    assert document["name"] and document["description"]
    assert document["runs"]["using"] == "composite"
    assert {"artifact", "policy", "bundle"} <= set(document["inputs"])
    assert document["inputs"]["artifact"]["required"] is True
    assert document["inputs"]["bundle"]["required"] is False
    for step in steps_of(document):
        if "run" in step:
            assert step.get("shell") == "bash", step.get("name")
    text = path.read_text()
    assert "--format sarif" in text and "GITHUB_STEP_SUMMARY" in text
    uses = [s["uses"] for s in steps_of(document) if "uses" in s]
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)


@pytest.mark.parametrize("path", [*WORKFLOWS, *ACTIONS], ids=lambda p: p.name)
def test_every_action_is_pinned_and_no_script_expands_untrusted_values(path: Path) -> None:
    for step in steps_of(load(path)):
        if "uses" in step:
            uses = step["uses"]
            assert uses.startswith("./") or PINNED.fullmatch(uses), f"{path.name}: {uses}"
        if "run" in step:
            assert not INJECTABLE.search(step["run"]), f"{path.name}: {step.get('name')}"


def test_pins_name_their_release() -> None:
    """A pin's comment says which release it is, so that updates can be reviewed."""
    for path in [*WORKFLOWS, *ACTIONS]:
        for line in path.read_text().splitlines():
            if re.search(r"uses: [^.].*@[0-9a-f]{40}", line):
                assert re.search(r"# v\d+\.\d+\.\d+$", line), line
