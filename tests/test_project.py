"""Project discovery walks up from the working directory, like git."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenance.errors import ProjectNotFoundError
from provenance.project import find_project, require_project


def test_found_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / ".provenance").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    project = find_project(deep)
    assert project is not None
    assert project.root == tmp_path
    assert project.ledger_path == tmp_path / ".provenance" / "ledger.db"


def test_nearest_project_wins(tmp_path: Path) -> None:
    (tmp_path / ".provenance").mkdir()
    inner = tmp_path / "inner"
    (inner / ".provenance").mkdir(parents=True)
    assert require_project(inner).root == inner


def test_a_file_or_link_named_provenance_is_not_a_project(tmp_path: Path) -> None:
    base = tmp_path / "p"
    base.mkdir()
    (base / ".provenance").write_text("not a directory")
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / ".provenance").mkdir()
    link_dir = tmp_path / "q"
    link_dir.mkdir()
    (link_dir / ".provenance").symlink_to(other / ".provenance")
    assert find_project(base) is None or find_project(base).root != base  # type: ignore[union-attr]
    assert find_project(link_dir) is None or find_project(link_dir).root != link_dir  # type: ignore[union-attr]


def test_missing_project_has_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if find_project() is not None:
        pytest.skip("a .provenance/ directory exists above the temporary directory")
    with pytest.raises(ProjectNotFoundError) as caught:
        require_project()
    assert "provenance init" in caught.value.diagnostics()
