"""Run *inside* the interpreter being described: print its site directories and distributions.

This file is executed as a script by :mod:`provenance.deps.inventory` with ``python -I -S -B``
and must therefore use only the standard library and syntax old interpreters read (3.8+). It
is never imported by the toolkit itself.

Why ``-S``: the ``site`` module executes the ``import`` lines of every ``.pth`` file in
site-packages, and an unexpected ``.pth`` file is exactly what ``provenance env check`` looks
for; describing an environment must not run code planted in it. So ``site`` is not run at
start-up. Instead this script reads ``pyvenv.cfg`` as ``site.venv`` would (it cannot call
it: that also processes ``.pth`` files), asks ``site`` for the site-packages directories of
the resulting prefixes, and follows the *path* lines of ``.pth`` files itself, never their
``import`` lines. ``-I`` keeps ``PYTHON*`` variables and the working directory out of it
(the user site directory is added back when the interpreter would use it); ``-B`` writes no
bytecode.
"""

from __future__ import annotations

import json
import os
import platform
import site
import sys
import sysconfig
from typing import Any

try:
    from importlib import metadata
except ImportError:  # pragma: no cover - Python < 3.8 has no importlib.metadata
    print(json.dumps({"error": "Python 3.8 or newer is needed to list distributions"}))
    sys.exit(0)


def _venv_prefixes() -> list[str]:
    """The prefixes whose site-packages are in use, reading ``pyvenv.cfg`` as ``site`` would.

    ``site.venv()`` itself cannot be called: it also processes ``.pth`` files.
    """
    exe_dir = os.path.dirname(os.path.abspath(sys.executable))
    prefix = os.path.dirname(exe_dir)
    for conf in (os.path.join(exe_dir, "pyvenv.cfg"), os.path.join(prefix, "pyvenv.cfg")):
        if os.path.isfile(conf):
            break
    else:
        return [sys.prefix, sys.exec_prefix]
    system_site = "false"
    with open(conf, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep and key.strip().lower() == "include-system-site-packages":
                system_site = value.strip().lower()
    prefixes = [prefix]
    if system_site == "true":
        prefixes += [sys.prefix, sys.exec_prefix]
    sys.prefix = sys.exec_prefix = prefix
    return prefixes


def _user_site(prefixes: list[str]) -> list[str]:
    """The user site directory, when the interpreter (started normally) would use it.

    ``-I`` keeps it out of this probe, but a training command run without ``-I``/``-s``
    imports from it: it is enabled unless ``PYTHONNOUSERSITE`` is set or a virtual
    environment excludes the system site-packages (as ``site.check_enableusersite`` and
    ``site.venv`` decide).
    """
    if os.environ.get("PYTHONNOUSERSITE"):
        return []
    in_venv = prefixes[0] != os.path.realpath(sys.base_prefix) and len(prefixes) == 1
    if in_venv:
        return []
    path = site.getusersitepackages()
    return [path] if isinstance(path, str) else []


def _site_dirs() -> list[str]:
    prefixes = _venv_prefixes()
    found: list[str] = []
    candidates: list[Any] = list(site.getsitepackages(list(dict.fromkeys(prefixes))))
    candidates += _user_site(prefixes)
    # sysconfig read sys.prefix when it was imported: give it the environment's prefix.
    paths = sysconfig.get_paths(vars={"base": prefixes[0], "platbase": prefixes[0]})
    candidates += [paths.get("purelib"), paths.get("platlib")]
    for candidate in candidates:
        if not candidate:
            continue
        real = os.path.realpath(candidate)
        if os.path.isdir(real) and real not in found:
            found.append(real)
    return found


def _pth_paths(site_dir: str) -> list[str]:
    """Directories the path lines of ``site_dir``'s ``.pth`` files add (import lines skipped)."""
    added: list[str] = []
    try:
        names = sorted(os.listdir(site_dir))
    except OSError:
        return added
    for name in names:
        if not name.endswith(".pth") or name.startswith("."):
            continue
        try:
            with open(os.path.join(site_dir, name), encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith(("import ", "import\t")):
                continue
            directory = os.path.realpath(os.path.join(site_dir, line.rstrip()))
            if os.path.isdir(directory) and directory not in added:
                added.append(directory)
    return added


def _license_classifiers(meta: Any) -> list[str]:
    return [c for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]


def main() -> None:
    site_dirs = _site_dirs()
    search = list(site_dirs)
    for directory in site_dirs:
        for extra in _pth_paths(directory):
            if extra not in search:
                search.append(extra)
    distributions = []
    for dist in metadata.distributions(path=search):
        meta: Any = dist.metadata  # an email.message.Message underneath
        location = getattr(dist, "_path", None)
        distributions.append(
            {
                "name": meta.get("Name"),
                "version": meta.get("Version"),
                "path": str(location) if location is not None else None,
                "licenseExpression": meta.get("License-Expression"),
                "license": meta.get("License"),
                "classifiers": _license_classifiers(meta),
            }
        )
    print(
        json.dumps(
            {
                "python": {
                    "implementation": platform.python_implementation(),
                    "version": platform.python_version(),
                    "platform": sysconfig.get_platform(),
                },
                "executable": sys.executable,
                "siteDirs": site_dirs,
                "searchPath": search,
                "distributions": distributions,
            }
        )
    )


main()
