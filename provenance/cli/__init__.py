"""The ``provenance`` command line: parse arguments, call the library, map errors to exit codes.

The CLI is deliberately thin. Each command module registers its sub-parsers and a handler that
returns an exit code; :func:`main` turns every :class:`provenance.errors.Error` into one line on
stderr (a traceback only with ``--debug``). ``main(argv)`` returns the code instead of exiting so
tests drive the real CLI in-process.

Exit codes: 0 success / trusted / identical; 1 refused / verification failed / differences
found; 2 bad usage or bad input; 3 an internal error (a bug: please report it).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence

from provenance import __version__
from provenance.errors import EXIT_BAD_INPUT, EXIT_REFUSED, Error

EXIT_INTERNAL = 3

Handler = Callable[[argparse.Namespace], int]

_EPILOG = """\
exit codes: 0 success, trusted or identical; 1 refused, verification failed or
differences found; 2 bad usage or bad input; 3 internal error.
"""


def _common_options() -> argparse.ArgumentParser:
    """Options every sub-command accepts, after its name as well as before it."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show debug logs and a traceback on error",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output",
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bar",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (sub-commands are registered by their modules)."""
    from provenance.cli import (
        attest_cmds,
        audit_cmds,
        bom_cmds,
        env_cmds,
        evaluate_cmds,
        export_cmds,
        ledger_cmds,
        manifests,
        model_cmds,
        project_cmds,
        release_cmds,
        run_cmds,
        scan_cmds,
        screen_cmds,
        verify_cmds,
    )

    parser = argparse.ArgumentParser(
        prog="provenance",
        description="Verify that a model may be trained, loaded or released: content digests, "
        "signed attestations and a verifier that refuses broken chains.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"provenance {__version__}")
    parser.add_argument("--debug", action="store_true", help="show debug logs and tracebacks")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options()
    project_cmds.register(commands, common)
    manifests.register(commands, common)
    attest_cmds.register(commands, common)
    ledger_cmds.register(commands, common)
    verify_cmds.register(commands, common)
    model_cmds.register(commands, common)
    run_cmds.register(commands, common)
    scan_cmds.register(commands, common)
    screen_cmds.register(commands, common)
    env_cmds.register(commands, common)
    bom_cmds.register(commands, common)
    evaluate_cmds.register(commands, common)
    release_cmds.register(commands, common)
    audit_cmds.register(commands, common)
    export_cmds.register(commands, common)
    return parser


def _normalise_argv(argv: list[str]) -> list[str]:
    """``manifest PATH`` is short for ``manifest create PATH``."""
    for i, word in enumerate(argv):
        if word.startswith("-"):
            continue
        if word == "manifest" and i + 1 < len(argv):
            following = argv[i + 1]
            if following not in ("create", "diff", "-h", "--help"):
                return [*argv[: i + 1], "create", *argv[i + 1 :]]
        break
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    arguments = _normalise_argv(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as e:  # argparse reports usage errors (and --help) by exiting
        return e.code if isinstance(e.code, int) else EXIT_BAD_INPUT
    from provenance import log

    log.configure(verbosity=args.verbose, debug=args.debug)
    handler: Handler = args.handler
    try:
        return handler(args)
    except Error as e:
        if args.debug:
            traceback.print_exc()
        print(f"provenance: error: {e.diagnostics()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("provenance: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_REFUSED
    except Exception as e:
        if args.debug:
            traceback.print_exc()
        print(
            f"provenance: internal error: {type(e).__name__}: {e} "
            "(run with --debug for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s code."""
    sys.exit(main())


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_REFUSED", "entry_point", "main"]
