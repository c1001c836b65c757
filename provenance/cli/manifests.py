"""``provenance digest``, ``provenance manifest [create]`` and ``provenance manifest diff``.

The digest machinery is imported inside the handlers, not here: building the parser (and so
``provenance --help`` and every other command) must not pay for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from provenance._filehash import display
from provenance.cli.progress import progress_for
from provenance.errors import EXIT_OK, EXIT_REFUSED, InputError, UnreadableError

if TYPE_CHECKING:
    from provenance.digest import Algorithm, Manifest, Progress, StatCache


class HashingOptions(TypedDict):
    """Keyword arguments that digest_path and build_manifest share."""

    allow_symlinks: bool
    cache: StatCache | None
    workers: int | None
    progress: Progress | None


MAX_MANIFEST_BYTES = 1 << 30
# The names of provenance.digest.Algorithm, repeated so that the parser needs no digest import
# (a test keeps the two equal).
ALGORITHMS = ("sha256", "blake3")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the digest and manifest sub-commands to ``commands``."""
    hashing = argparse.ArgumentParser(add_help=False)
    hashing.add_argument(
        "--algorithm",
        default="sha256",
        choices=ALGORITHMS,
        help="digest algorithm (default sha256, the only one policies accept by default)",
    )
    hashing.add_argument(
        "--allow-symlinks",
        action="store_true",
        help="record symbolic links with their targets (never followed; none may leave the root)",
    )
    hashing.add_argument(
        "--cache",
        action="store_true",
        help="reuse digests of unchanged files from the project's stat cache",
    )
    hashing.add_argument("--cache-dir", type=Path, help="use this directory for the stat cache")
    hashing.add_argument("-j", "--jobs", type=int, help="hashing threads (default: one per core)")

    digest = commands.add_parser(
        "digest",
        parents=[common, hashing],
        help="print the digest that names a file or directory",
        description="Print the digest naming PATH: the digest of its bytes for a file, the root "
        "digest of its manifest for a directory.",
    )
    digest.add_argument("path", type=Path, metavar="PATH")
    digest.add_argument("--format", choices=["text", "json"], default="text")
    digest.set_defaults(handler=run_digest)

    manifest = commands.add_parser(
        "manifest",
        help="write a directory's manifest, or compare two",
        description="'manifest PATH -o FILE' writes PATH's manifest; "
        "'manifest diff OLD NEW' lists what changed.",
    )
    actions = manifest.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create",
        parents=[common, hashing],
        help="write PATH's manifest (canonical JSON)",
        description="Write PATH's manifest as canonical JSON: its sha256 is the root digest.",
    )
    create.add_argument("path", type=Path, metavar="PATH")
    create.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write here (default: standard output)",
    )
    create.set_defaults(handler=run_manifest_create)

    diff = actions.add_parser(
        "diff",
        parents=[common, hashing],
        help="list files added, removed and changed from OLD to NEW",
        description="Compare OLD and NEW, each a manifest file or a directory. A directory is "
        "hashed with the other side's algorithm and ignore rules when the other side is a "
        "manifest. Exit 1 when they differ.",
    )
    diff.add_argument("old", type=Path, metavar="OLD")
    diff.add_argument("new", type=Path, metavar="NEW")
    diff.add_argument("--format", choices=["text", "json"], default="text")
    diff.set_defaults(handler=run_manifest_diff)


@contextlib.contextmanager
def _hashing(args: argparse.Namespace, path: Path) -> Iterator[HashingOptions]:
    """The hashing options the command line gave, with the stat cache open while in use."""
    from provenance.digest import StatCache
    from provenance.project import require_project

    cache = None
    if args.cache_dir is not None:
        cache = StatCache(args.cache_dir)
    elif args.cache:
        cache = StatCache(require_project().cache_dir)
    try:
        yield {
            "allow_symlinks": args.allow_symlinks,
            "cache": cache,
            "workers": args.jobs,
            "progress": progress_for(f"hashing {path}", quiet=args.quiet),
        }
    finally:
        if cache is not None:
            cache.close()


def _build(
    path: Path, args: argparse.Namespace, *, algorithm: Algorithm, manifest_like: Manifest | None
) -> Manifest:
    from provenance.digest import build_manifest

    ignore = manifest_like.ignore if manifest_like is not None else None
    with _hashing(args, path) as options:
        return build_manifest(path, algorithm=algorithm, ignore=ignore, **options)


def run_digest(args: argparse.Namespace) -> int:
    """Print the digest naming a file or directory."""
    from provenance.digest import Algorithm, ArtifactKind, digest_path

    with _hashing(args, args.path) as options:
        result = digest_path(args.path, algorithm=Algorithm.parse(args.algorithm), **options)
    if args.format == "json":
        _print_json(
            {
                "path": str(args.path),
                "kind": result.kind.value,
                "digest": str(result.digest),
                "algorithm": result.digest.algorithm.value,
                "files": result.files,
                "bytes": result.bytes,
            }
        )
    else:
        noun = "file" if result.files == 1 else "files"
        kind = "file" if result.kind is ArtifactKind.FILE else "directory"
        print(
            f"{result.digest}  {display(str(args.path))}  "
            f"({kind}, {result.files} {noun}, {result.bytes} bytes)"
        )
    return EXIT_OK


def run_manifest_create(args: argparse.Namespace) -> int:
    """Write the canonical manifest of a path."""
    from provenance.cli.common import write_out
    from provenance.digest import Algorithm

    manifest = _build(
        args.path, args, algorithm=Algorithm.parse(args.algorithm), manifest_like=None
    )
    summary = f"{manifest.root_digest}  {manifest.file_count} files, {manifest.total_bytes} bytes"
    write_out(manifest.canonical_bytes, args.output)
    if args.output is None:
        print(summary, file=sys.stderr)
    else:
        print(f"{summary} -> {display(str(args.output))}")
    return EXIT_OK


def _load_manifest(path: Path) -> Manifest:
    from provenance.digest import Manifest
    from provenance.fsutil import read_limited

    return Manifest.from_bytes(read_limited(path, MAX_MANIFEST_BYTES), source=str(path))


def _is_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except FileNotFoundError as e:
        raise InputError(f"no such file or directory: {path}") from e
    except OSError as e:
        raise UnreadableError(f"cannot access {path}: {e.strerror}") from e


def run_manifest_diff(args: argparse.Namespace) -> int:
    """Compare two manifests or directories."""
    from provenance.digest import Algorithm

    old_is_dir, new_is_dir = _is_directory(args.old), _is_directory(args.new)
    old = None if old_is_dir else _load_manifest(args.old)
    new = None if new_is_dir else _load_manifest(args.new)
    reference = old or new
    algorithm = reference.algorithm if reference else Algorithm.parse(args.algorithm)
    if old is None:
        old = _build(args.old, args, algorithm=algorithm, manifest_like=new)
    if new is None:
        new = _build(args.new, args, algorithm=algorithm, manifest_like=old)
    if old.ignore != new.ignore:
        print(
            "provenance: warning: the two sides were built with different ignore rules",
            file=sys.stderr,
        )
    changes = old.diff(new)
    if args.format == "json":
        _print_json(
            {
                "old": {"path": str(args.old), "digest": str(old.root_digest)},
                "new": {"path": str(args.new), "digest": str(new.root_digest)},
                "identical": changes.identical,
                "added": list(changes.added),
                "removed": list(changes.removed),
                "changed": list(changes.changed),
            }
        )
    else:
        for mark, paths in (("+", changes.added), ("-", changes.removed), ("~", changes.changed)):
            for path in paths:
                print(f"{mark} {display(path)}")
        if changes.identical:
            print(f"identical: {new.root_digest}")
        else:
            print(
                f"{len(changes.added)} added, {len(changes.removed)} removed, "
                f"{len(changes.changed)} changed"
            )
    return EXIT_OK if changes.identical else EXIT_REFUSED


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False))
