"""Loading a policy file: YAML in, a validated :class:`~provenance.policy.model.Policy` out.

Loading fails closed. Unknown keys, duplicate keys, an empty trust list, a requirement that
names an undefined root, a threshold that cannot be met, a CEL condition that does not compile
or that does not depend on the attestation (``true``, ``1 == 1``) are all errors that name the
place in the file -- a policy that silently trusted more than it says is worse than none.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from provenance.errors import FormatError, InputError
from provenance.fsutil import read_limited
from provenance.policy.model import (
    KIND_PREDICATES,
    Condition,
    KeyRoot,
    Policy,
    Requirement,
    Root,
    Rule,
    SigstoreRoot,
)
from provenance.signing.keys import PublicKey
from provenance.signing.sigstore import Identity, Instance

MAX_POLICY_BYTES = 1 << 20
MAX_CONDITION_CHARS = 4096
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DURATION = re.compile(r"(\d{1,6})([dhms])")
_CEL_VARIABLES = frozenset({"predicate", "subject"})


class PolicyError(FormatError):
    """The policy file is malformed or unsafe; the message names where."""


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            mark = key_node.start_mark
            raise PolicyError(f"a mapping key must be a scalar (line {mark.line + 1})")
        if key in result:
            mark = key_node.start_mark
            raise PolicyError(f"duplicate key {key!r} (line {mark.line + 1})")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _keys(document: Any, where: str, *, required: set[str], allowed: set[str]) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise PolicyError(f"{where} must be a mapping")
    if unknown := sorted(str(k) for k in set(document) - allowed):
        raise PolicyError(f"{where}: unknown key(s) {', '.join(unknown)}")
    if missing := sorted(required - set(document)):
        raise PolicyError(f"{where}: missing {', '.join(missing)}")
    return document


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where} must be a non-empty string")
    return value


def _root(name: str, document: Any, base: Path) -> Root:
    where = f"roots.{name}"
    spec = _keys(document, where, required=set(), allowed={"key", "pem", "kms", "sigstore"})
    kinds = [k for k in ("key", "pem", "sigstore") if k in spec]
    if len(kinds) != 1:
        raise PolicyError(f"{where} needs exactly one of key (a file), pem, sigstore")
    if "kms" in spec and kinds[0] == "sigstore":
        raise PolicyError(f"{where}: a KMS root is verified with its public key (key or pem)")
    if kinds[0] == "sigstore":
        sig = _keys(
            spec["sigstore"],
            f"{where}.sigstore",
            required={"identity", "issuer"},
            allowed={"identity", "issuer", "regex", "instance"},
        )
        regex = sig.get("regex", False)
        if not isinstance(regex, bool):
            raise PolicyError(f"{where}.sigstore.regex must be true or false")
        try:
            instance = Instance(sig.get("instance", "production"))
            identity = Identity(
                _string(sig["identity"], f"{where}.sigstore.identity"),
                _string(sig["issuer"], f"{where}.sigstore.issuer"),
                regex=regex,
            )
        except (ValueError, InputError) as e:
            raise PolicyError(f"{where}.sigstore: {e}") from e
        return SigstoreRoot(name, identity, instance)
    try:
        if kinds[0] == "key":
            path = Path(_string(spec["key"], f"{where}.key"))
            key = PublicKey.from_file(path if path.is_absolute() else base / path)
        else:
            key = PublicKey(_string(spec["pem"], f"{where}.pem").encode())
    except InputError as e:
        raise PolicyError(f"{where}: {e.message}") from e
    kms = spec.get("kms")
    return KeyRoot(name, key, _string(kms, f"{where}.kms") if kms is not None else None)


def _signer_identity(root: Root) -> object:
    if isinstance(root, KeyRoot):
        return ("key", root.key.key_id)
    return ("sigstore", root.identity, root.instance)


def _condition(source: Any, where: str) -> Condition:
    import celpy
    import lark

    text = _string(source, where)
    if len(text) > MAX_CONDITION_CHARS:
        raise PolicyError(f"{where}: longer than {MAX_CONDITION_CHARS} characters")
    environment = celpy.Environment()
    try:
        tree = environment.compile(text)
        program = environment.program(tree)
        names = {
            token.value
            for token in tree.scan_values(lambda v: isinstance(v, lark.Token) and v.type == "IDENT")
        }
    except Exception as e:  # celpy raises parse, compile and recursion errors of many kinds
        raise PolicyError(f"{where}: CEL does not compile: {' '.join(str(e).split())}") from e
    condition = Condition(text, program)
    # A condition true of an empty attestation is true of every attestation that lacks what
    # it tests: refuse it ("true || ...", "size(subject) >= 0", "has(x) || !has(x)").
    if not names & _CEL_VARIABLES or condition.holds({}, []):
        raise PolicyError(
            f"{where}: {text!r} holds whatever the attestation says, so it checks nothing; "
            "a condition must test predicate or subject"
        )
    return condition


def _duration(value: Any, where: str) -> dt.timedelta:
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match[1]) == 0:
        raise PolicyError(f"{where} must be a positive duration such as 90d, 12h, 30m or 45s")
    unit = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}[match[2]]
    return dt.timedelta(**{unit: int(match[1])})


def _requirement(
    document: Any, where: str, roots: dict[str, Root], default_age: dt.timedelta | None
) -> Requirement:
    spec = _keys(
        document,
        where,
        required={"predicateType", "signedBy"},
        allowed={"predicateType", "signedBy", "threshold", "conditions", "maxAge"},
    )
    signed_by = spec["signedBy"]
    if not isinstance(signed_by, list) or not signed_by:
        raise PolicyError(f"{where}.signedBy must be a non-empty list of root names")
    for name in signed_by:
        if not isinstance(name, str):
            raise PolicyError(f"{where}.signedBy must list root names (strings)")
        if name not in roots:
            raise PolicyError(f"{where}.signedBy names {name!r}, which roots does not define")
    if len(set(signed_by)) != len(signed_by):
        raise PolicyError(f"{where}.signedBy names a root twice")
    # Distinct roots must be distinct signers, or one key could meet a threshold of two.
    signers = [_signer_identity(roots[name]) for name in signed_by]
    if len(set(signers)) != len(signers):
        raise PolicyError(f"{where}.signedBy names two roots for the same key or identity")
    threshold = spec.get("threshold", 1)
    if (
        not isinstance(threshold, int)
        or isinstance(threshold, bool)
        or not (1 <= threshold <= len(signed_by))
    ):
        raise PolicyError(f"{where}.threshold must be between 1 and {len(signed_by)}")
    conditions = spec.get("conditions", [])
    if not isinstance(conditions, list):
        raise PolicyError(f"{where}.conditions must be a list of CEL expressions")
    return Requirement(
        _string(spec["predicateType"], f"{where}.predicateType"),
        tuple(signed_by),
        threshold,
        tuple(_condition(c, f"{where}.conditions[{i}]") for i, c in enumerate(conditions)),
        _duration(spec["maxAge"], f"{where}.maxAge") if "maxAge" in spec else default_age,
    )


def _revoked(document: Any) -> tuple[frozenset[str], frozenset[str]]:
    spec = _keys(document, "revoked", required=set(), allowed={"keys", "attestations"})
    keys, attestations = spec.get("keys", []), spec.get("attestations", [])
    if not isinstance(keys, list) or not all(
        isinstance(k, str) and _HEX64.fullmatch(k) for k in keys
    ):
        raise PolicyError("revoked.keys must be a list of key ids (64 lowercase hex)")
    ids = []
    for item in attestations if isinstance(attestations, list) else [None]:
        text = item.removeprefix("sha256:") if isinstance(item, str) else ""
        if not _HEX64.fullmatch(text):
            raise PolicyError("revoked.attestations must be a list of attestation ids")
        ids.append(text)
    return frozenset(keys), frozenset(ids)


def parse_policy(text: str, *, base: Path, source: str = "policy") -> Policy:
    """Validate a policy document; relative key paths are resolved against ``base``."""
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except PolicyError as e:
        raise PolicyError(f"{source}: {e.message}") from e
    except yaml.YAMLError as e:
        raise PolicyError(f"{source}: not valid YAML ({' '.join(str(e).split())})") from e
    except RecursionError as e:  # PyYAML composes nested collections recursively
        raise PolicyError(f"{source}: nested too deeply") from e
    except ValueError as e:  # e.g. an integer beyond the interpreter's digit limit
        raise PolicyError(f"{source}: unreadable value ({e})") from e
    try:
        return _policy(document, base, source)
    except PolicyError as e:
        raise PolicyError(f"{source}: {e.message}") from e


def _policy(document: Any, base: Path, source: str) -> Policy:
    spec = _keys(
        document,
        "the policy",
        required={"version", "roots", "rules"},
        allowed={"version", "roots", "rules", "revoked", "maxDepth", "maxAge", "allowDirty"},
    )
    if type(spec["version"]) is not int or spec["version"] != 1:
        raise PolicyError(f"unsupported policy version {spec['version']!r} (expected 1)")
    raw_roots = spec["roots"]
    if not isinstance(raw_roots, dict) or not raw_roots:
        raise PolicyError("roots must name at least one trust root")
    roots: dict[str, Root] = {}
    for name, root in raw_roots.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise PolicyError(f"invalid root name {name!r}")
        roots[name] = _root(name, root, base)
    raw_rules = spec["rules"]
    if not isinstance(raw_rules, dict) or not raw_rules:
        raise PolicyError("rules must define at least one kind of artifact")
    default_age = _duration(spec["maxAge"], "maxAge") if "maxAge" in spec else None
    rules: dict[str, Rule] = {}
    for kind, rule in raw_rules.items():
        if kind not in KIND_PREDICATES:
            raise PolicyError(
                f"rules: unknown kind {kind!r} (known: {', '.join(sorted(KIND_PREDICATES))})"
            )
        body = _keys(rule, f"rules.{kind}", required={"require"}, allowed={"require"})
        required = body["require"]
        if not isinstance(required, list) or not required:
            raise PolicyError(f"rules.{kind}.require must list at least one requirement")
        rules[kind] = Rule(
            kind,
            tuple(
                _requirement(r, f"rules.{kind}.require[{i}]", roots, default_age)
                for i, r in enumerate(required)
            ),
        )
    revoked_keys, revoked_attestations = _revoked(spec.get("revoked", {}))
    max_depth = spec.get("maxDepth", 16)
    if not isinstance(max_depth, int) or isinstance(max_depth, bool) or not 1 <= max_depth <= 256:
        raise PolicyError("maxDepth must be an integer from 1 to 256")
    allow_dirty = spec.get("allowDirty", False)
    if not isinstance(allow_dirty, bool):
        raise PolicyError("allowDirty must be true or false")
    return Policy(roots, rules, revoked_keys, revoked_attestations, max_depth, source, allow_dirty)


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file at ``path``."""
    data = read_limited(path, MAX_POLICY_BYTES, what="policy")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyError(f"{path}: not valid UTF-8") from e
    return parse_policy(text, base=path.parent, source=str(path))
