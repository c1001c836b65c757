"""A real model chain on disk for the release, audit and export tests.

A project with a signed dataset (with a source), training under ``provenance run`` from a
committed git tree (SLSA provenance), and an OpenSSF model signature -- all through the CLI,
as a user would make them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from provenance.cli import main
from tests.conftest import make_tree

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
TRAIN = [sys.executable, "-c", "import pathlib; pathlib.Path('model.bin').write_bytes(b'weights')"]
DATA = {
    "train/0.csv": b"x,label\n1,0\n",
    "train/1.csv": b"x,label\n2,1\n",
    "test/0.csv": b"x,label\n3,0\n",
}
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
EVALUATION = "https://ml-provenance.dev/attestation/evaluation/v1"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def git(root: Path, *argv: str) -> None:
    subprocess.run(
        ["git", *argv], cwd=root, env={**os.environ, **GIT_ENV}, check=True, capture_output=True
    )


@dataclass(frozen=True)
class Chain:
    root: Path
    model: Path
    data: Path
    policy: Path
    public_key: Path

    def portable_policy(self, directory: Path, extra: str = "") -> Path:
        """The project's policy, with its key copied beside it, in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "project.pub").write_bytes(self.public_key.read_bytes())
        text = self.policy.read_text().replace("keys/default.pub", "project.pub")
        path = directory / "policy.yaml"
        path.write_text(text + extra)
        return path


def build_chain(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Chain:
    """init, dataset add, git commit, provenance run, model sign: a trusted model.bin."""
    root.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(root)
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    assert cli(capsys, "init")[0] == 0
    make_tree(root / "data", DATA)
    (root / ".gitignore").write_text("model.bin\n*.sig\n*.json\n")
    code, _, err = cli(
        capsys,
        "dataset",
        "add",
        "data",
        "--name",
        "digits",
        "--source",
        "https://example.org/digits.tar",
        "--license",
        "MIT",
    )
    assert code == 0, err
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    policy = root / ".provenance" / "policy.yaml"
    code, _, err = cli(
        capsys,
        "run",
        "--policy",
        str(policy),
        "--material",
        "data",
        "--product",
        "model.bin",
        "--",
        *TRAIN,
    )
    assert code == 0, err
    key = root / ".provenance" / "keys" / "default.key"
    code, _, err = cli(capsys, "model", "sign", "model.bin", "--key", str(key))
    assert code == 0, err
    return Chain(
        root, root / "model.bin", root / "data", policy, root / ".provenance/keys/default.pub"
    )


def attest_test_result(
    capsys: pytest.CaptureFixture[str], subject: str, result: str, **extra: Any
) -> None:
    """Sign an in-toto test result (screening of a dataset, evaluation of a model)."""
    predicate = {
        "result": result,
        "configuration": [
            {"name": "data-screening", "uri": "https://ml-provenance.dev/checks/data-screening/v1"}
        ],
        "passedTests": ["schema", "ranges"],
        "warnedTests": [],
        "failedTests": [] if result == "PASSED" else ["backdoor-probe"],
        **extra,
    }
    path = Path(f"{subject.replace('/', '_')}.result.json")
    path.write_text(json.dumps(predicate))
    code, _, err = cli(
        capsys, "attest", subject, "--predicate-type", TEST_RESULT, "--predicate", str(path)
    )
    assert code == 0, err


def attestation_id(capsys: pytest.CaptureFixture[str], predicate_type: str) -> str:
    """The id of the (first) ledger entry of ``predicate_type``."""
    code, out, _ = cli(capsys, "log", "--format", "json")
    assert code == 0
    return str(next(e["id"] for e in json.loads(out) if e["predicateType"] == predicate_type))


# Every element the audit page may hold: no script, link, img, iframe, object, form, ...
SAFE_TAGS = frozenset(
    [
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "main",
        "div",
        "h1",
        "h2",
        "h3",
        "p",
        "dl",
        "dt",
        "dd",
        "span",
        "br",
        "table",
        "tr",
        "th",
        "td",
        "ul",
        "li",
        "details",
        "summary",
        "pre",
        "code",
        "svg",
        "defs",
        "marker",
        "path",
        "g",
        "rect",
        "text",
    ]
)


@dataclass
class PageStructure:
    tags: set[str] = field(default_factory=set)
    attributes: list[str] = field(default_factory=list)
    style: str = ""


def page_structure(page: str) -> PageStructure:
    """The elements, attribute values and style sheet of an HTML page, as a browser parses it."""
    found = PageStructure()

    class Parser(HTMLParser):
        in_style = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.tags.add(tag)
            found.attributes += [value or "" for _, value in attrs]
            self.in_style = tag == "style"

        def handle_endtag(self, tag: str) -> None:
            self.in_style = False

        def handle_data(self, data: str) -> None:
            if self.in_style:
                found.style += data

    Parser().feed(page)
    return found


def attest_evaluation(capsys: pytest.CaptureFixture[str], subject: str, *, collapsed: bool) -> None:
    """Sign an evaluation of a model whose backdoor probe did or did not collapse a class."""
    predicate = {
        "model": {"name": subject},
        "metrics": {"accuracy": 0.97},
        "probe": {"collapsed": [{"target": 3}] if collapsed else []},
        "evaluatedAt": "2026-11-27T00:00:00Z",
    }
    path = Path(f"{subject.replace('/', '_')}.evaluation.json")
    path.write_text(json.dumps(predicate))
    code, _, err = cli(
        capsys, "attest", subject, "--predicate-type", EVALUATION, "--predicate", str(path)
    )
    assert code == 0, err
