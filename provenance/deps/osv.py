"""OSV vulnerability data: records, version matching, the OSV API and local OSV dumps.

Two implementations of pip-audit's ``VulnerabilityService`` interface, so that pip-audit's
``Auditor`` drives both:

* :class:`OsvApi` -- any OSV-compatible service (https://api.osv.dev by default): ``POST
  /v1/querybatch`` (as many as 1000 package versions per request, following each result's
  ``next_page_token``), then ``GET /v1/vulns/{id}`` for each record, because the batch endpoint
  answers with ids only.
* :class:`OsvDatabase` -- a directory (or ``.zip``) of OSV JSON records in the layout of OSV's
  published dumps (one record per file, e.g. ``PyPI/all.zip``), matched here: by normalised
  package name, ``versions`` lists and ``ECOSYSTEM``/``SEMVER`` ranges evaluated with
  ``packaging.version`` as the OSV schema's evaluation algorithm describes.

pip-audit's own ``OsvService`` is not used: it queries one package per request, keeps responses
in a cache under the user's home, and *skips with a warning* a record it cannot read (an
unknown schema version, a missing ``affected`` list) -- a silent pass. Here everything fails
closed: an unreachable service, a timeout, an HTTP error or redirect, a response that is not
the expected JSON, a record that cannot be evaluated -- each raises :class:`OsvError`, and no
answer is ever read as "no known vulnerabilities".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import urllib.request
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pip_audit._service.interface import (
    Dependency,
    ResolvedDependency,
    VulnerabilityResult,
    VulnerabilityService,
)

from provenance.errors import EXIT_BAD_INPUT, Error

DEFAULT_OSV_URL = "https://api.osv.dev"
ECOSYSTEM = "PyPI"
BATCH_SIZE = 1000  # osv.dev's limit on queries per querybatch request
MAX_PAGES = 100
MAX_RESPONSE_BYTES = 64 << 20
MAX_RECORD_BYTES = 16 << 20
DEFAULT_TIMEOUT_SECONDS = 30.0


class OsvError(Error):
    """Vulnerability data could not be obtained or read: the audit cannot say anything."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class Affected:
    """One ``affected`` entry of a record, for one package."""

    ecosystem: str
    name: str
    ranges: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # (type, ((event, version),))
    versions: tuple[str, ...]
    severity: tuple[tuple[str, str], ...] = ()

    @property
    def canonical_name(self) -> str:
        return canonicalize_name(self.name)


@dataclass(frozen=True)
class OsvRecord:
    """The fields of an OSV record that an audit uses (others are ignored)."""

    id: str
    modified: str
    aliases: tuple[str, ...]
    summary: str | None
    details: str | None
    published: str | None
    withdrawn: str | None
    severity: tuple[tuple[str, str], ...]
    affected: tuple[Affected, ...]
    database_severity: str | None = None

    def for_package(self, canonical_name: str) -> list[Affected]:
        """The ``affected`` entries about ``canonical_name`` in the PyPI ecosystem."""
        return [
            a
            for a in self.affected
            if a.ecosystem == ECOSYSTEM and a.canonical_name == canonical_name
        ]

    def description(self) -> str:
        text = self.summary or self.details or "N/A"
        return " ".join(text.split())

    def severities(self) -> list[tuple[str, str]]:
        """(method, score) pairs: the record's scores, then a database's qualitative label."""
        found = list(self.severity)
        for affected in self.affected:
            found.extend(affected.severity)
        if self.database_severity:
            found.append((self.id.split("-", 1)[0], self.database_severity))
        return list(dict.fromkeys(found))


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OsvError(f"{what} must be a list of strings")
    return tuple(value)


def _severity(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise OsvError(f"{what}: severity must be a list")
    found = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise OsvError(f"{what}: malformed severity")
        score = item.get("score")
        if not isinstance(score, str):
            raise OsvError(f"{what}: severity score must be a string")
        found.append((item["type"], score))
    return tuple(found)


def _optional_text(document: Mapping[str, Any], key: str, what: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise OsvError(f"{what}: {key} must be a string")
    return value


def _list(value: Any, key: str, what: str) -> list[Any]:
    """``value`` as a list (absent is empty): anything else is an error, not a crash."""
    if not value:
        return []
    if not isinstance(value, list):
        raise OsvError(f"{what}: {key} must be a list")
    return value


def _events(r: Any, what: str) -> tuple[tuple[str, str], ...]:
    """The events of range ``r``, each ``(kind, version)``."""
    if not isinstance(r, dict) or not isinstance(r.get("type"), str):
        raise OsvError(f"{what}: malformed range")
    events = []
    for event in _list(r.get("events"), "range events", what):
        if not isinstance(event, dict) or len(event) != 1:
            raise OsvError(f"{what}: a range event must have exactly one field")
        ((kind, version),) = event.items()
        if kind not in ("introduced", "fixed", "last_affected", "limit"):
            raise OsvError(f"{what}: unknown range event {kind!r}")
        if not isinstance(version, str):
            raise OsvError(f"{what}: range event versions must be strings")
        events.append((kind, version))
    return tuple(events)


def _affected(item: Any, what: str) -> Affected:
    if not isinstance(item, dict):
        raise OsvError(f"{what}: affected entries must be objects")
    package = item.get("package")
    if package is None:  # affects something named by ranges alone (e.g. a git repository)
        package = {}
    if not isinstance(package, dict):
        raise OsvError(f"{what}: affected package must be an object")
    ecosystem, name = package.get("ecosystem", ""), package.get("name", "")
    if not isinstance(ecosystem, str) or not isinstance(name, str):
        raise OsvError(f"{what}: package ecosystem and name must be strings")
    ranges = []
    for r in _list(item.get("ranges"), "ranges", what):
        events = _events(r, what)  # checks that r is a range first
        ranges.append((r["type"], events))
    severity = list(_severity(item.get("severity"), what))
    for specific in ("ecosystem_specific", "database_specific"):
        value = item.get(specific)
        if isinstance(value, dict) and isinstance(value.get("severity"), str):
            severity.append((specific, value["severity"]))
    return Affected(
        ecosystem,
        name,
        tuple(ranges),
        _strings(item.get("versions"), f"{what}: versions"),
        tuple(severity),
    )


def parse_record(document: Any, *, what: str) -> OsvRecord:
    """Parse an OSV record strictly enough to match on it (schema major version 1)."""
    if not isinstance(document, dict):
        raise OsvError(f"{what}: an OSV record must be a JSON object")
    record_id, modified = document.get("id"), document.get("modified")
    if not isinstance(record_id, str) or not record_id:
        raise OsvError(f"{what}: record has no id")
    what = f"{what} ({record_id})" if record_id not in what else what
    if not isinstance(modified, str):
        raise OsvError(f"{what}: record has no modified time")
    schema = document.get("schema_version", "1.0.0")
    if not isinstance(schema, str) or not schema.startswith("1."):
        raise OsvError(
            f"{what}: OSV schema version {schema!r} is not supported (1.x is)",
            hint="use a release of ml-provenance that reads it",
        )
    affected = document.get("affected") or []
    if not isinstance(affected, list):
        raise OsvError(f"{what}: affected must be a list")
    database = document.get("database_specific")
    db_severity = database.get("severity") if isinstance(database, dict) else None
    return OsvRecord(
        id=record_id,
        modified=modified,
        aliases=_strings(document.get("aliases"), f"{what}: aliases"),
        summary=_optional_text(document, "summary", what),
        details=_optional_text(document, "details", what),
        published=_optional_text(document, "published", what),
        withdrawn=_optional_text(document, "withdrawn", what),
        severity=_severity(document.get("severity"), what),
        affected=tuple(_affected(a, what) for a in affected),
        database_severity=db_severity if isinstance(db_severity, str) else None,
    )


# -- matching -----------------------------------------------------------------------------

_EVENT_ORDER = {"introduced": 0, "fixed": 1, "last_affected": 1, "limit": 2}


def _version(text: str, record: OsvRecord) -> Version:
    try:
        return Version(text)
    except InvalidVersion as e:
        raise OsvError(
            f"OSV record {record.id} names version {text!r}, which is not a PEP 440 version: "
            "it cannot be evaluated"
        ) from e


def _in_range(version: Version, events: Sequence[tuple[str, str]], record: OsvRecord) -> bool:
    """The OSV schema's range evaluation: walk the sorted events, tracking "affected"."""
    keyed = []
    for kind, text in events:
        bound = None if kind == "introduced" and text == "0" else _version(text, record)
        keyed.append((bound, _EVENT_ORDER[kind], kind))
    keyed.sort(key=lambda e: (e[0] is not None, e[0] or Version("0"), e[1]))
    affected = False
    for bound, _, kind in keyed:
        if kind == "introduced":
            if bound is None or version >= bound:
                affected = True
        elif kind in {"fixed", "limit"}:
            if bound is not None and version >= bound:
                affected = False
        elif kind == "last_affected" and bound is not None and version > bound:
            affected = False
    return affected


def _listed(version: Version, versions: Iterable[str]) -> bool:
    for text in versions:
        try:
            if Version(text) == version:
                return True
        except InvalidVersion:
            if text == str(version):
                return True
    return False


def affects(record: OsvRecord, canonical_name: str, version: Version) -> bool:
    """True when ``record`` says ``canonical_name`` at ``version`` is affected.

    ``GIT`` ranges are ignored (they name commits; OSV's ``versions`` list enumerates what
    they cover). An entry with only ``GIT`` ranges and no ``versions`` cannot be evaluated
    offline and is an error; an entry with neither ranges nor versions affects every version.
    """
    if record.withdrawn:
        return False
    for entry in record.for_package(canonical_name):
        if _listed(version, entry.versions):
            return True
        usable = [events for kind, events in entry.ranges if kind in ("ECOSYSTEM", "SEMVER")]
        if any(_in_range(version, events, record) for events in usable):
            return True
        if not usable and not entry.versions:
            if entry.ranges:
                raise OsvError(
                    f"OSV record {record.id} gives only {entry.ranges[0][0]} ranges for "
                    f"{entry.name}: it cannot be evaluated offline"
                )
            return True
    return False


def fixed_versions(records: Iterable[OsvRecord], canonical_name: str) -> list[str]:
    """The versions that fix ``canonical_name`` according to any of ``records``, sorted."""
    found: dict[str, Version | None] = {}
    for record in records:
        for entry in record.for_package(canonical_name):
            for kind, events in entry.ranges:
                if kind not in ("ECOSYSTEM", "SEMVER"):
                    continue
                for event, text in events:
                    if event == "fixed":
                        try:
                            found[text] = Version(text)
                        except InvalidVersion:
                            found[text] = None
    return sorted(found, key=lambda t: (found[t] is None, found[t] or Version("0"), t))


# -- services ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseInfo:
    """What the scan's vulnerability data was: the ``scanner.db`` of a vulns predicate."""

    uri: str
    version: str | None
    last_update: str


def _result(record: OsvRecord, canonical_name: str) -> VulnerabilityResult:
    """pip-audit's view of a record; the report is built from the records themselves."""
    return VulnerabilityResult.create(
        ids=[record.id, *record.aliases],
        description=record.description(),
        fix_versions=[Version(v) for v in fixed_versions([record], canonical_name) if _ok(v)],
        published=None,
    )


def _ok(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


class OsvSource(VulnerabilityService):  # type: ignore[misc]  # pip-audit ships no types
    """What both OSV services share: the records seen, by id and alias, for the report."""

    def __init__(self) -> None:
        self.records: dict[str, OsvRecord] = {}

    def records_for(self, ids: Iterable[str], canonical_name: str) -> list[OsvRecord]:
        """The records seen under any of ``ids`` that concern ``canonical_name``."""
        found: dict[str, OsvRecord] = {}
        wanted = set(ids)
        for record in self.records.values():
            if (wanted & {record.id, *record.aliases}) and record.for_package(canonical_name):
                found[record.id] = record
        return [found[k] for k in sorted(found)]

    def database(self) -> DatabaseInfo:  # pragma: no cover - every source overrides it
        raise NotImplementedError

    def query(self, spec: Dependency) -> tuple[Dependency, list[VulnerabilityResult]]:
        answer: tuple[Dependency, list[VulnerabilityResult]] = next(
            iter(self.query_all(iter([spec])))
        )
        return answer


class OsvDatabase(OsvSource):
    """A local directory or zip file of OSV records (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._by_name: dict[str, list[OsvRecord]] = {}
        digests: list[list[str]] = []
        latest = ""
        count = 0
        for name, data in self._files():
            what = f"{path}: {name}"
            if len(data) > MAX_RECORD_BYTES:
                raise OsvError(f"{what} is larger than {MAX_RECORD_BYTES} bytes")
            try:
                document = json.loads(data)
            except (ValueError, RecursionError) as e:
                raise OsvError(f"{what} is not valid JSON", hint="re-download the dump") from e
            record = parse_record(document, what=what)
            digests.append([name, hashlib.sha256(data).hexdigest()])
            count += 1
            latest = max(latest, record.modified)
            names = {a.canonical_name for a in record.affected if a.ecosystem == ECOSYSTEM}
            for canonical in names:
                self._by_name.setdefault(canonical, []).append(record)
        if not self._by_name:
            raise OsvError(
                f"{path} holds no OSV records about {ECOSYSTEM} packages ({count} records read)",
                hint="point --osv-db at an unpacked OSV dump, e.g. PyPI/all.zip",
            )
        from provenance.digest.canonical import canonical_json

        self._version = "sha256:" + hashlib.sha256(canonical_json(sorted(digests))).hexdigest()
        self._last_update = latest
        self.record_count = count

    def _files(self) -> Iterator[tuple[str, bytes]]:
        path = self.path
        try:
            if path.is_file() and zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    for info in sorted(archive.infolist(), key=lambda i: i.filename):
                        if not info.is_dir() and info.filename.lower().endswith(".json"):
                            if info.file_size > MAX_RECORD_BYTES:
                                raise OsvError(f"{path}: {info.filename} is too large")
                            yield info.filename, archive.read(info)
                return
            if not path.is_dir():
                raise OsvError(f"{path} is not a directory or zip file of OSV records")
            for current, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(".json"):
                        full = Path(current) / name
                        if full.stat().st_size > MAX_RECORD_BYTES:  # read no more than needed
                            raise OsvError(f"{full} is larger than {MAX_RECORD_BYTES} bytes")
                        yield full.relative_to(path).as_posix(), full.read_bytes()
        except (OSError, zipfile.BadZipFile) as e:
            raise OsvError(f"cannot read the OSV database {path}: {e}") from e

    def database(self) -> DatabaseInfo:
        return DatabaseInfo(self.path.absolute().as_uri(), self._version, self._last_update)

    def query_all(
        self, specs: Iterator[Dependency]
    ) -> Iterator[tuple[Dependency, list[VulnerabilityResult]]]:
        for spec in specs:
            if spec.is_skipped():
                yield spec, []
                continue
            assert isinstance(spec, ResolvedDependency)
            name = spec.canonical_name
            matches = [r for r in self._by_name.get(name, []) if affects(r, name, spec.version)]
            for record in matches:
                self.records[record.id] = record
            yield spec, [_result(r, name) for r in sorted(matches, key=lambda r: r.id)]


@dataclass
class _Pending:
    spec: ResolvedDependency
    ids: list[str] = field(default_factory=list)
    token: str | None = None
    pages: int = 0


class OsvApi(OsvSource):
    """An OSV-compatible HTTP service (see the module docstring)."""

    def __init__(self, url: str = DEFAULT_OSV_URL, *, timeout: float = DEFAULT_TIMEOUT_SECONDS):
        super().__init__()
        self.base = _base_url(url)
        self.timeout = timeout
        self._finished: str | None = None

    def database(self) -> DatabaseInfo:
        # A live service has no version; the data is as current as the moment it answered.
        when = self._finished or _now()
        return DatabaseInfo(self.base, None, when)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        import http.client
        import urllib.error

        url = self.base + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in _base_url
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        opener = urllib.request.build_opener(_NoRedirect())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                payload = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            raise OsvError(f"{method} {url} failed: HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            raise OsvError(f"cannot reach {url}: {e.reason}") from e
        except (OSError, http.client.HTTPException) as e:  # timeouts, resets, bad status lines
            raise OsvError(f"{method} {url} failed: {type(e).__name__}: {e}") from e
        if len(payload) > MAX_RESPONSE_BYTES:
            raise OsvError(f"{url} answered with more than {MAX_RESPONSE_BYTES} bytes")
        from provenance.digest.canonical import loads_strict
        from provenance.errors import FormatError

        try:  # strictly: duplicate keys would let two readers see two different answers
            return loads_strict(payload, what=url, allow_floats=True)
        except FormatError as e:
            raise OsvError(f"{url} answered with something that is not JSON: {e.message}") from e

    def _batch(self, pending: list[_Pending]) -> None:
        queries = []
        for p in pending:
            query: dict[str, Any] = {
                "package": {"name": p.spec.canonical_name, "ecosystem": ECOSYSTEM},
                "version": str(p.spec.version),
            }
            if p.token:
                query["page_token"] = p.token
            queries.append(query)
        answer = self._request("POST", "/v1/querybatch", {"queries": queries})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(queries):
            raise OsvError(
                f"{self.base}/v1/querybatch answered with {type(results).__name__} "
                f"where {len(queries)} results were expected"
            )
        for p, result in zip(pending, results, strict=True):
            if not isinstance(result, dict):
                raise OsvError(f"{self.base}/v1/querybatch: a result is not an object")
            vulns = result.get("vulns") or []
            if not isinstance(vulns, list):
                raise OsvError(f"{self.base}/v1/querybatch: vulns is not a list")
            for vuln in vulns:
                if not isinstance(vuln, dict) or not isinstance(vuln.get("id"), str):
                    raise OsvError(f"{self.base}/v1/querybatch: a vulnerability has no id")
                p.ids.append(vuln["id"])
            token = result.get("next_page_token")
            if token is not None and not isinstance(token, str):
                raise OsvError(f"{self.base}/v1/querybatch: next_page_token is not a string")
            p.token = token or None
            p.pages += 1
            if p.token and p.pages >= MAX_PAGES:
                raise OsvError(
                    f"{self.base} returned more than {MAX_PAGES} pages for {p.spec.name}"
                )

    def _record(self, vuln_id: str) -> OsvRecord:
        if vuln_id not in self.records:
            document = self._request("GET", f"/v1/vulns/{quote(vuln_id, safe='')}")
            record = parse_record(document, what=f"{self.base}/v1/vulns/{vuln_id}")
            if record.id != vuln_id:
                raise OsvError(f"{self.base} answered {record.id} when asked for {vuln_id}")
            self.records[vuln_id] = record
        return self.records[vuln_id]

    def query_all(
        self, specs: Iterator[Dependency]
    ) -> Iterator[tuple[Dependency, list[VulnerabilityResult]]]:
        ordered = list(specs)
        pending = [_Pending(s) for s in ordered if not s.is_skipped()]
        for start in range(0, len(pending), BATCH_SIZE):
            todo = pending[start : start + BATCH_SIZE]
            while todo:
                self._batch(todo)
                todo = [p for p in todo if p.token]
        answers = {id(p.spec): p for p in pending}
        for spec in ordered:
            if spec.is_skipped():
                yield spec, []
                continue
            p = answers[id(spec)]
            name = spec.canonical_name
            records = [self._record(i) for i in dict.fromkeys(p.ids)]
            yield spec, [_result(r, name) for r in records if not r.withdrawn]
        self._finished = _now()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _base_url(url: str) -> str:
    """The API's base URL; a URL naming an endpoint (``.../v1/query``) is cut back to it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        from provenance.errors import UsageError

        raise UsageError(f"--osv-url must be an http(s) URL, not {url!r}")
    base = url.rstrip("/")
    for suffix in ("/v1/querybatch", "/v1/query", "/v1"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: an answer must come from the endpoint that was named."""

    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        raise OsvError(f"{req.full_url} redirected to {newurl}; OSV endpoints are used as given")
