"""provenance run and training_run: refuse before the command, attest after it, record nothing
when it fails; the allowDirty policy rule over the source state it records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import jsonschema
import pytest

from provenance.cli import main
from provenance.errors import InputError, RefusedError
from provenance.guard.run import training_run
from provenance.guard.source import public_uri, source_state
from provenance.predicates.training import Distribution
from tests.conftest import make_tree

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "attest" / "training.schema.json").read_text()
)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
# The command every run test starts: it writes the marker (proof that it ran) and a product.
TRAIN = [
    sys.executable,
    "-c",
    "import pathlib; pathlib.Path('ran.marker').write_text('x');"
    "pathlib.Path('model.bin').write_bytes(b'weights')",
]


def git(root: Path, *argv: str) -> None:
    subprocess.run(
        ["git", *argv], cwd=root, env={**os.environ, **GIT_ENV}, check=True, capture_output=True
    )


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def statements(root: Path) -> list[dict[str, object]]:
    from provenance.ledger import Ledger

    with Ledger(root / ".provenance" / "ledger.db") as ledger:
        return [e.parsed().statement.to_json() for e in ledger.entries()]


def training_statements(root: Path) -> list[dict[str, object]]:
    return [s for s in statements(root) if s["predicateType"] == "https://slsa.dev/provenance/v1"]


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A committed git work tree with a project and a signed dataset in it."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    assert cli(capsys, "init")[0] == 0
    make_tree(root / "data", {"train/a.csv": b"x,y\n1,0\n", "test/b.csv": b"x,y\n2,1\n"})
    (root / ".gitignore").write_text("ran.marker\nmodel.bin\nout/\n")
    assert cli(capsys, "dataset", "add", "data", "--name", "d")[0] == 0
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def run_cmd(
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    product: str = "model.bin",
    command: Sequence[str] = TRAIN,
) -> tuple[int, str, str]:
    """``provenance run`` on the signed ``data`` material, ``TRAIN`` unless told otherwise."""
    base = ["run", "--policy", ".provenance/policy.yaml", "--material", "data"]
    return cli(capsys, *base, "--product", product, *extra, "--", *command)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_attests_products_and_the_model_verifies(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cmd(capsys, "--config", ".gitignore")
    assert code == 0, err
    assert (project / "ran.marker").exists()
    assert "1 material(s) verified" in err
    assert "model.bin" in out
    (document,) = training_statements(project)
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
    predicate = document["predicate"]
    assert isinstance(predicate, dict)
    definition = predicate["buildDefinition"]
    assert definition["externalParameters"]["command"] == TRAIN
    assert definition["externalParameters"]["configFiles"][0]["path"] == ".gitignore"
    roles = [d["annotations"]["role"] for d in definition["resolvedDependencies"]]
    assert roles.count("material") == 1 and roles.count("source") == 1
    assert "environment" in roles  # this interpreter's distributions, as package URLs
    source = next(d for d in definition["resolvedDependencies"] if d["name"] == "source")
    assert source["annotations"]["dirty"] is False
    # The model verifies, and its chain reaches the dataset it was trained on.
    code, out, _ = cli(
        capsys, "verify", "model.bin", "--policy", ".provenance/policy.yaml", "--format", "json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["trusted"] is True
    assert report["root"]["inputs"][0]["kind"] == "dataset"


def test_a_tampered_material_is_refused_before_the_command_starts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "data" / "train" / "a.csv").write_bytes(b"x,y\n1,1\n")
    code, _, err = run_cmd(capsys)
    assert code == 1
    assert "refusing to train" in err and "data" in err
    assert not (project / "ran.marker").exists()
    assert training_statements(project) == []


def test_unsigned_and_untrusted_materials_are_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(project / "extra", {"x.bin": b"unsigned"})
    code, _, err = run_cmd(capsys, "--material", "extra")
    assert code == 1
    assert "extra" in err and "no attestation names this artifact" in err
    assert not (project / "ran.marker").exists()
    # Signed, but by a key the policy does not trust.
    assert cli(capsys, "key", "generate", "other")[0] == 0
    make_tree(project / "other-data", {"y.bin": b"signed by someone else"})
    other_key = ".provenance/keys/other.key"
    assert cli(capsys, "dataset", "add", "other-data", "--name", "o", "--key", other_key)[0] == 0
    code, _, err = run_cmd(capsys, "--material", "other-data")
    assert code == 1
    assert "other-data" in err and "not project's key" in err
    assert not (project / "ran.marker").exists()


def test_a_failed_command_records_nothing_and_returns_its_code(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cmd(
        capsys,
        command=python(
            "import pathlib, sys; pathlib.Path('model.bin').write_bytes(b'half'); sys.exit(7)"
        ),
    )
    assert code == 7
    assert "no provenance recorded" in err
    assert training_statements(project) == []


def test_a_missing_product_or_a_material_changed_during_the_run_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cmd(capsys, product="never-written.bin", command=python("pass"))
    assert code == 1 and "did not produce never-written.bin" in err
    code, _, err = run_cmd(
        capsys,
        command=python(
            "import pathlib; pathlib.Path('model.bin').write_bytes(b'w');"
            "pathlib.Path('data/train/a.csv').write_bytes(b'poisoned')"
        ),
    )
    assert code == 1 and "input(s) changed during the run: data" in err
    assert training_statements(project) == []


def test_usage_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--policy", ".provenance/policy.yaml", "--material", "data"]
    code, _, err = cli(capsys, *base, "--product", "m", "--")
    assert code == 2 and "no command to run" in err
    code, _, err = cli(capsys, *base, "--product", "data", "--", "true")
    assert code == 2 and "cannot also be a product" in err
    code, _, err = cli(capsys, *base, "--product", "m", "--", "/nonexistent/command")
    assert code == 2 and "cannot run /nonexistent/command" in err
    code, _, err = cli(capsys, *base, "--product", "m", "--material", "missing", "--", "true")
    assert code == 2 and "missing" in err


def test_dirty_and_unversioned_sources_are_refused_unless_the_policy_allows(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "train.py").write_text("print('uncommitted code')\n")
    assert run_cmd(capsys)[0] == 0
    (document,) = training_statements(project)
    predicate = document["predicate"]
    assert isinstance(predicate, dict)
    source = next(
        d for d in predicate["buildDefinition"]["resolvedDependencies"] if d["name"] == "source"
    )
    assert source["annotations"]["dirty"] is True
    code, out, _ = cli(capsys, "verify", "model.bin", "--policy", ".provenance/policy.yaml")
    assert code == 1 and "dirty tree" in out
    allowing = project / ".provenance" / "allow-dirty.yaml"
    text = (project / ".provenance" / "policy.yaml").read_text()
    allowing.write_text(text.replace("allowDirty: false", "allowDirty: true"))
    assert cli(capsys, "verify", "model.bin", "--policy", str(allowing))[0] == 0
    # Outside any git work tree there is no source record at all: refused the same way.
    (project / ".git").rename(project / "not-git")
    (project / "model.bin").unlink()
    assert run_cmd(capsys)[0] == 0
    code, out, _ = cli(capsys, "verify", "model.bin", "--policy", ".provenance/policy.yaml")
    assert code == 1 and "not under version control" in out
    assert cli(capsys, "verify", "model.bin", "--policy", str(allowing))[0] == 0


def test_training_run_api(project: Path) -> None:
    import provenance

    assert provenance.training_run is training_run  # the public name, imported lazily
    with training_run(policy=".provenance/policy.yaml", materials=["data"], step="fit") as run:
        (project / "out").mkdir()
        (project / "out" / "weights.bin").write_bytes(b"w")
        run.add_product("out")
    (document,) = training_statements(project)
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert document["subject"] == [
        {"name": "out", "digest": document["subject"][0]["digest"]}  # type: ignore[index]
    ]
    # A block that raises records nothing.
    with (
        pytest.raises(RuntimeError, match="diverged"),
        training_run(policy=".provenance/policy.yaml", materials=["data"]) as run,
    ):
        run.add_product("out")
        raise RuntimeError("loss diverged")
    assert len(training_statements(project)) == 1
    # Refused materials: the block never runs.
    (project / "data" / "test" / "b.csv").write_bytes(b"changed")
    entered = False
    with (
        pytest.raises(RefusedError, match="refusing to train"),
        training_run(policy=".provenance/policy.yaml", materials=["data"]),
    ):
        entered = True
    assert not entered


def test_training_run_needs_materials_and_products(project: Path) -> None:
    with (
        pytest.raises(InputError, match="at least one material"),
        training_run(policy=".provenance/policy.yaml", materials=[]),
    ):
        pass
    with (
        pytest.raises(InputError, match="named no products"),
        training_run(policy=".provenance/policy.yaml", materials=["data"]),
    ):
        pass


def test_source_state_and_remote_credentials(tmp_path: Path) -> None:
    assert source_state(tmp_path) is None  # not a work tree
    assert public_uri("https://user:s3cret@github.com/org/repo.git") == (
        "git+https://github.com/org/repo.git"
    )
    assert public_uri("git@github.com:org/repo.git") == "git+ssh://git@github.com/org/repo.git"
    assert public_uri("not a url") is None


def test_distribution_package_urls() -> None:
    assert Distribution("Typing_Extensions", "4.12.2").purl == "pkg:pypi/typing-extensions@4.12.2"
    assert Distribution("torch", "2.13.0+cpu").purl == "pkg:pypi/torch@2.13.0%2Bcpu"


def test_the_interpreter_a_command_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance.guard.environment import interpreter_of

    python = Path(sys.executable)
    assert interpreter_of([str(python), "train.py"]) == str(python)
    assert interpreter_of(["env", "SEED=1", str(python), "train.py"]) == str(python)
    script = tmp_path / "train"
    script.write_text(f"#!/usr/bin/env {python.name}\nprint(1)\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{python.parent}{os.pathsep}{tmp_path}")
    assert interpreter_of(["train"]) == str(python.parent / python.name)
    # A console script names its interpreter; a shell launcher may run any: not guessed at.
    console = tmp_path / "console"
    console.write_text(f"#!{python}\nimport sys\n")
    console.chmod(0o755)
    assert interpreter_of(["console", "train.py"]) == str(python)
    launcher = tmp_path / "launch"
    launcher.write_text('#!/bin/sh\nexec python3 "$@"\n')
    launcher.chmod(0o755)
    assert interpreter_of(["launch", "train.py"]) is None
    assert interpreter_of(["bash", "-c", "python train.py"]) is None


def test_a_command_whose_interpreter_is_unknown_records_no_environment(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cmd(capsys, command=["sh", "-c", "printf w > model.bin"])
    assert code == 0, err
    assert "cannot tell which Python sh runs" in err
    (document,) = training_statements(project)
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
    predicate = document["predicate"]
    assert isinstance(predicate, dict)
    roles = {d["annotations"]["role"] for d in predicate["buildDefinition"]["resolvedDependencies"]}
    assert roles == {"material", "source"}


def test_a_material_holding_ignored_paths_is_refused(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "data" / "train" / ".git").mkdir()
    (project / "data" / "train" / ".git" / "poison.csv").write_bytes(b"x,y\n9,9\n")
    code, _, err = run_cmd(capsys)
    assert code == 1 and "holds paths no digest covers (train/.git/)" in err
    assert not (project / "ran.marker").exists()
    assert run_cmd(capsys, "--allow-ignored")[0] == 0
