"""Hash-on-read datasets: only verified bytes are ever returned, whatever happens on disk later."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from provenance.bundle import Bundle
from provenance.cli import main
from provenance.digest import Digest, build_manifest
from provenance.errors import InputError, RefusedError, UsageError
from provenance.guard import dataset as guard_dataset
from provenance.guard.dataset import (
    DatasetRefusedError,
    ReadRefusedError,
    VerifiedDataset,
    verified_dataset,
)
from provenance.predicates.dataset import dataset_statement
from provenance.signing.keys import KeySigner
from provenance.verify.evidence import BundleFileEvidence
from tests.conftest import make_tree

POLICY = ".provenance/policy.yaml"
FILES = {
    "train/a.csv": b"x,y\n1,0\n",
    "train/b.csv": b"x,y\n2,1\n",
    "test/c.csv": b"x,y\n3,0\n",
    "empty.txt": b"",
}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A project (key, ledger, policy) whose dataset ``data/`` is attested with its key."""
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    cli(capsys, "init")
    make_tree(root / "data", FILES)
    cli(capsys, "dataset", "add", "data", "--name", "toy")
    return root


@pytest.fixture
def data(project: Path) -> VerifiedDataset:
    return verified_dataset("data", POLICY)


# -- verification -------------------------------------------------------------------------------


def test_a_verified_dataset_reads_every_file(project: Path, data: VerifiedDataset) -> None:
    assert data.files == tuple(sorted(FILES))
    assert data.digest == build_manifest(project / "data").root_digest
    assert data.root == project / "data"
    for relpath, content in FILES.items():
        assert relpath in data
        assert data.read_bytes(relpath) == content
        with data.open(relpath) as stream:
            assert stream.read() == content
    assert len(data) == len(FILES)


def test_a_path_object_names_a_verified_file(data: VerifiedDataset) -> None:
    assert data.read_bytes(Path("train/a.csv")) == FILES["train/a.csv"]  # type: ignore[arg-type]


def test_evidence_from_a_bundle_file_needs_no_project(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli(capsys, "ledger", "export", "-o", str(tmp_path / "chain.jsonl"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    policy = project / POLICY
    data = verified_dataset(project / "data", policy, bundle=tmp_path / "chain.jsonl")
    assert data.read_bytes("test/c.csv") == FILES["test/c.csv"]
    given = BundleFileEvidence(tmp_path / "chain.jsonl")
    assert verified_dataset(project / "data", policy, evidence=given).digest == data.digest
    with pytest.raises(UsageError, match="not both"):
        verified_dataset(project / "data", policy, bundle=tmp_path / "x", evidence=given)


def test_an_unattested_dataset_is_refused(project: Path) -> None:
    make_tree(project / "other", {"a.bin": b"\x00"})
    with pytest.raises(DatasetRefusedError, match="no attestation names this artifact"):
        verified_dataset("other", POLICY)


def test_a_dataset_changed_before_verification_is_refused_naming_the_file(project: Path) -> None:
    (project / "data" / "train" / "b.csv").write_bytes(b"x,y\n2,0\n")
    with pytest.raises(DatasetRefusedError) as caught:
        verified_dataset("data", POLICY)
    assert caught.value.exit_code == 1
    assert "no attestation names this artifact" in caught.value.message
    assert "1 changed (train/b.csv)" in caught.value.message
    assert "\n" not in caught.value.diagnostics()


def test_a_dataset_signed_by_an_untrusted_key_is_refused(project: Path, tmp_path: Path) -> None:
    manifest = build_manifest(project / "data")
    bundle = Bundle.sign_statement(dataset_statement(manifest, name="toy"), KeySigner.generate())
    (tmp_path / "chain.jsonl").write_bytes(bundle.raw + b"\n" + manifest.canonical_bytes + b"\n")
    with pytest.raises(DatasetRefusedError, match=r"does not verify: .*key"):
        verified_dataset("data", POLICY, bundle=tmp_path / "chain.jsonl")


def test_a_single_file_dataset(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli(capsys, "dataset", "add", "data/train/a.csv", "--name", "one")
    data = verified_dataset("data/train/a.csv", POLICY)
    assert data.files == ("a.csv",)
    assert data.read_bytes("a.csv") == FILES["train/a.csv"]
    with pytest.raises(ReadRefusedError):
        data.read_bytes("b.csv")  # a sibling on disk, but not part of the dataset


# -- reads refused after verification --------------------------------------------------------------


def test_a_file_changed_in_place_is_refused_and_its_bytes_never_returned(
    project: Path, data: VerifiedDataset
) -> None:
    target = project / "data" / "train" / "a.csv"
    target.write_bytes(b"x,y\n1,1\n")  # same size, one label flipped: the poisoning case
    with pytest.raises(ReadRefusedError, match=r"train/a\.csv.*bytes differ") as caught:
        data.read_bytes("train/a.csv")
    assert caught.value.exit_code == 1
    with pytest.raises(ReadRefusedError):
        data.open("train/a.csv")
    assert data.read_bytes("train/b.csv") == FILES["train/b.csv"]  # the others still read
    target.write_bytes(FILES["train/a.csv"])  # restored: the verified bytes read again
    assert data.read_bytes("train/a.csv") == FILES["train/a.csv"]


def test_a_file_of_another_size_is_refused_after_reading_one_byte_past_its_size(
    project: Path, data: VerifiedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "data" / "train" / "a.csv").write_bytes(b"x" * 10_000_000)
    asked: list[int] = []
    real_read = os.read

    def counted(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(guard_dataset, "_os_read", counted)
    with pytest.raises(ReadRefusedError, match="10000000 bytes, not the verified 8"):
        data.read_bytes("train/a.csv")
    assert asked == [9]
    (project / "data" / "empty.txt").write_bytes(b"!")
    with pytest.raises(ReadRefusedError, match="1 bytes, not the verified 0"):
        data.read_bytes("empty.txt")


def test_a_file_that_grows_while_read_is_read_no_further_than_its_size_plus_one(
    project: Path, data: VerifiedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []
    real_read = os.read

    def grow_then_read(fd: int, n: int) -> bytes:
        asked.append(n)
        with (project / "data" / "train" / "a.csv").open("ab") as handle:
            handle.write(b"more" * 1000)
        return real_read(fd, n)

    monkeypatch.setattr(guard_dataset, "_os_read", grow_then_read)
    with pytest.raises(ReadRefusedError, match="not the verified 8"):
        data.read_bytes("train/a.csv")
    assert asked == [len(FILES["train/a.csv"]) + 1]


def test_a_short_first_read_is_completed(
    data: VerifiedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File systems may return less than asked (FUSE, network, huge files): keep reading."""
    real_read = os.read
    monkeypatch.setattr(guard_dataset, "_os_read", lambda fd, n: real_read(fd, min(n, 3)))
    assert data.read_bytes("train/a.csv") == FILES["train/a.csv"]


def test_a_file_replaced_by_a_link_is_refused_even_to_identical_bytes(
    project: Path, tmp_path: Path, data: VerifiedDataset
) -> None:
    copy = tmp_path / "copy.csv"
    copy.write_bytes(FILES["train/a.csv"])
    target = project / "data" / "train" / "a.csv"
    target.unlink()
    target.symlink_to(copy)
    with pytest.raises(ReadRefusedError, match="replaced by a symbolic link"):
        data.read_bytes("train/a.csv")


def test_a_file_replaced_by_a_fifo_is_refused_without_blocking(
    project: Path, data: VerifiedDataset
) -> None:
    target = project / "data" / "train" / "a.csv"
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(ReadRefusedError, match="no longer a regular file"):
        data.read_bytes("train/a.csv")


def test_a_file_replaced_by_a_directory_is_refused(project: Path, data: VerifiedDataset) -> None:
    target = project / "data" / "train" / "a.csv"
    target.unlink()
    target.mkdir()
    with pytest.raises(ReadRefusedError, match="now a directory"):
        data.read_bytes("train/a.csv")


def test_a_removed_file_is_refused(project: Path, data: VerifiedDataset) -> None:
    (project / "data" / "test" / "c.csv").unlink()
    with pytest.raises(ReadRefusedError, match="no longer exists"):
        data.read_bytes("test/c.csv")


def test_an_unreadable_file_is_an_input_error_not_a_refusal(
    data: VerifiedDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(path: str, flags: int) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(guard_dataset, "_os_open", denied)
    with pytest.raises(InputError, match=r"cannot open test/c\.csv .*: Permission denied") as e:
        data.read_bytes("test/c.csv")
    assert not isinstance(e.value, RefusedError)


@pytest.mark.parametrize(
    "relpath",
    [
        "new.csv",
        "train",
        "../data/train/a.csv",
        "train/../train/a.csv",
        "./train/a.csv",
        "train//a.csv",
        "/etc/passwd",
        "",
        "TRAIN/A.CSV",
    ],
)
def test_paths_outside_the_verified_manifest_are_refused(
    project: Path, data: VerifiedDataset, relpath: str
) -> None:
    (project / "data" / "new.csv").write_bytes(b"added after verification\n")
    with pytest.raises(ReadRefusedError, match="not a file of the verified dataset"):
        data.read_bytes(relpath)
    assert relpath not in data


def test_an_absolute_path_to_a_verified_file_is_refused(
    project: Path, data: VerifiedDataset
) -> None:
    with pytest.raises(ReadRefusedError, match="not a file of the verified dataset"):
        data.read_bytes(str(project / "data" / "train" / "a.csv"))


def test_link_entries_are_listed_but_never_read(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "data" / "latest.csv").symlink_to("train/a.csv")
    cli(capsys, "dataset", "add", "data", "--name", "linked", "--allow-symlinks")
    with pytest.raises(InputError, match="symbolic link"):
        verified_dataset("data", POLICY)  # hashed as attested or not at all
    data = verified_dataset("data", POLICY, allow_symlinks=True)
    assert "latest.csv" not in data.files
    with pytest.raises(ReadRefusedError, match="symbolic link in the verified manifest"):
        data.read_bytes("latest.csv")


# -- pickling --------------------------------------------------------------------------------------


def test_the_handle_pickles_small_and_still_checks_every_read(
    project: Path, data: VerifiedDataset
) -> None:
    data.files  # noqa: B018 - the cached listing is not part of the pickle
    blob = pickle.dumps(data)
    assert len(blob) < 200 + 80 * len(FILES)
    copy = pickle.loads(blob)
    assert isinstance(copy, VerifiedDataset)
    assert copy.digest == data.digest and copy.files == data.files
    assert copy.read_bytes("train/a.csv") == FILES["train/a.csv"]
    (project / "data" / "train" / "a.csv").write_bytes(b"x,y\n9,9\n")
    with pytest.raises(ReadRefusedError):
        copy.read_bytes("train/a.csv")


def test_a_pickle_of_another_version_is_refused(data: VerifiedDataset) -> None:
    state = list(data.__getstate__())
    state[0] = 999
    copy = VerifiedDataset.__new__(VerifiedDataset)
    with pytest.raises(InputError, match="another version"):
        copy.__setstate__(tuple(state))


# -- torch ---------------------------------------------------------------------------------------


def named(data: bytes, relpath: str) -> tuple[str, bytes]:
    """A decoder that pickles (module level), for spawned workers."""
    return relpath, data


def test_verified_files_selects_and_decodes(data: VerifiedDataset) -> None:
    from provenance.torch import VerifiedFiles

    everything = VerifiedFiles(data)
    assert len(everything) == len(FILES)
    assert everything[0] == FILES[data.files[0]]
    assert everything[-1] == FILES[data.files[-1]]
    train = VerifiedFiles(data, pattern="train/*", decode=named)
    assert [train[i] for i in range(len(train))] == [
        ("train/a.csv", FILES["train/a.csv"]),
        ("train/b.csv", FILES["train/b.csv"]),
    ]
    chosen = VerifiedFiles(data, files=["test/c.csv", Path("empty.txt")], decode=named)
    assert chosen.files == ("empty.txt", "test/c.csv")
    with pytest.raises(ReadRefusedError, match=r"new\.csv"):
        VerifiedFiles(data, files=["train/a.csv", "new.csv"])


def test_provenance_torch_reexports_the_dataset_api() -> None:
    import provenance.torch

    assert provenance.torch.verified_dataset is verified_dataset
    assert issubclass(provenance.torch.ReadRefusedError, RefusedError)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_a_dataloader_with_workers_yields_every_verified_file(
    data: VerifiedDataset, context: str
) -> None:
    torch = pytest.importorskip("torch")
    from provenance.torch import VerifiedFiles

    loader = torch.utils.data.DataLoader(
        VerifiedFiles(data, decode=named),
        batch_size=2,
        num_workers=2,
        collate_fn=list,
        multiprocessing_context=context,
    )
    items = [item for batch in loader for item in batch]
    assert dict(items) == FILES


def test_a_file_tampered_after_verification_stops_the_dataloader(
    project: Path, data: VerifiedDataset
) -> None:
    torch = pytest.importorskip("torch")
    from provenance.torch import VerifiedFiles

    (project / "data" / "train" / "b.csv").write_bytes(b"x,y\n2,0\n")
    loader = torch.utils.data.DataLoader(
        VerifiedFiles(data, decode=named), batch_size=1, num_workers=2, collate_fn=list
    )
    batches = iter(loader)
    seen: list[Any] = []
    with pytest.raises(ReadRefusedError, match=r"train/b\.csv.*bytes differ") as caught:
        seen.extend(batches)
    assert all(item[0][0] != "train/b.csv" for item in seen)
    # Free the iterator now, outside the traceback's reference cycle: shut down by the garbage
    # collector instead, torch's workers miss their stop signal and are joined after 5 s each.
    caught.value.__traceback__ = None
    del caught, batches


def test_digest_is_the_attested_one(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, "dataset", "add", "data", "--name", "toy")
    assert verified_dataset("data", POLICY).digest == Digest.parse(out.split()[0])
