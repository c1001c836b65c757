"""``provenance env audit``: real OSV records served by a real local HTTP server, and a local
OSV dump; findings are recorded and exit 1, anything that could not be checked exits 2 and
records nothing.
"""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from provenance.deps.osv import OsvError, affects, parse_record
from tests.env_helpers import build_wheel, make_venv, osv_dump, osv_records, run, schema_validate

GHSA_SHA256 = "ba64fe6a2f5bbbcdc140c5d2ea2f73483bd20d419d1d0f7f9132cd06c73f8ca7"
PYSEC_SHA256 = "5ba63db249087043a1c09d933e0a8b2a9e34ec226ece53ceaf523307e721f049"
VULNERABLE = "requests==2.19.0\nsix==1.16.0  # a comment\n"
CLEAN = "requests==2.20.0\nsix==1.16.0\n"


class OsvHandler(BaseHTTPRequestHandler):
    """The OSV API as osv.dev serves it: /v1/query, /v1/querybatch, /v1/vulns/{id}.

    Matching is deliberately simple and independent of the code under test: a version is
    affected when a PyPI ``affected`` entry of the package lists it or lies below a ``fixed``
    event of a range introduced at 0.
    """

    records: ClassVar[list[dict[str, Any]]] = []
    mode: ClassVar[str] = "ok"
    requests_seen: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reply(self, document: Any) -> None:
        mode = type(self).mode
        if mode == "error":
            self._send(500, b'{"code": 13, "message": "internal error"}')
        elif mode == "close":
            self.close_connection = True  # no status line at all
        elif mode == "garbage":
            self._send(200, b"<html>not json</html>")
        elif mode == "slow":
            time.sleep(1.0)
            self._send(200, json.dumps(document).encode())
        elif mode == "short" and "results" in document:
            self._send(200, json.dumps({"results": document["results"][:-1]}).encode())
        elif mode == "redirect":
            self.send_response(307)
            self.send_header("Location", "http://127.0.0.1:9/v1/querybatch")
            self.end_headers()
        else:
            self._send(200, json.dumps(document).encode())

    @classmethod
    def _matching(cls, name: str, version: str) -> list[dict[str, Any]]:
        found = []
        for record in cls.records:
            for affected in record.get("affected", []):
                package = affected["package"]
                if package["ecosystem"] != "PyPI" or canonicalize_name(package["name"]) != name:
                    continue
                listed = version in affected.get("versions", [])
                below = any(
                    r["type"] == "ECOSYSTEM"
                    and {"introduced": "0"} in r["events"]
                    and any(
                        "fixed" in e and Version(version) < Version(e["fixed"]) for e in r["events"]
                    )
                    for r in affected.get("ranges", [])
                )
                if listed or below:
                    found.append(record)
                    break
        return found

    def do_POST(self) -> None:
        type(self).requests_seen.append(self.path)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/query":
            package = body["package"]
            vulns = self._matching(canonicalize_name(package["name"]), body["version"])
            self._reply({"vulns": vulns} if vulns else {})
        elif self.path == "/v1/querybatch":
            results = []
            for query in body["queries"]:
                package = query["package"]
                vulns = self._matching(canonicalize_name(package["name"]), query["version"])
                summary = [{"id": v["id"], "modified": v["modified"]} for v in vulns]
                results.append({"vulns": summary} if summary else {})
            self._reply({"results": results})
        else:
            self._send(404, b'{"code": 5, "message": "Not Found"}')

    def do_GET(self) -> None:
        type(self).requests_seen.append(self.path)
        prefix = "/v1/vulns/"
        wanted = self.path[len(prefix) :] if self.path.startswith(prefix) else None
        for record in type(self).records:
            if record["id"] == wanted:
                self._reply(record)
                return
        self._send(404, b'{"code": 5, "message": "Bug not found."}')


@pytest.fixture
def osv_server() -> Iterator[tuple[str, type[OsvHandler], ThreadingHTTPServer]]:
    class Handler(OsvHandler):
        records: ClassVar[list[dict[str, Any]]] = osv_records()
        mode: ClassVar[str] = "ok"
        requests_seen: ClassVar[list[str]] = []

    handler = Handler
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.delenv("PROVENANCE_KEY_PASSPHRASE", raising=False)
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    assert run(capsys, "init")[0] == 0
    (root / "vulnerable.txt").write_text(VULNERABLE)
    (root / "clean.txt").write_text(CLEAN)
    return root


def _entries(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    code, out, _ = run(capsys, "log", "--format", "json")
    assert code == 0
    entries: list[dict[str, Any]] = json.loads(out)
    return entries


def _statement(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run(capsys, *argv, "--format", "json")
    assert out, err
    document: dict[str, Any] = json.loads(out)
    schema_validate(document["statement"], "vulns.schema.json")
    return code, document


def test_a_vulnerable_pin_is_found_reported_and_recorded(
    project: Path, osv_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, handler, _ = osv_server
    code, out, _ = run(capsys, "env", "audit", "-r", "vulnerable.txt", "--osv-url", url)
    assert code == 1
    assert "requests==2.19.0  PYSEC-2018-28 (CVE-2018-18074, GHSA-x84v-xcm2-53pg)" in out
    assert "fixed in 2.20.0" in out
    assert "1 known vulnerability in 1 of 2 packages" in out and "ledger entry 1" in out
    assert handler.requests_seen[0] == "/v1/querybatch"
    assert sorted(handler.requests_seen[1:]) == [
        "/v1/vulns/GHSA-x84v-xcm2-53pg",
        "/v1/vulns/PYSEC-2018-28",
    ]
    (entry,) = _entries(capsys)
    assert entry["predicateType"] == "https://in-toto.io/attestation/vulns/v0.2"
    import hashlib

    digest = hashlib.sha256((project / "vulnerable.txt").read_bytes()).hexdigest()
    assert entry["subjects"] == [{"digest": {"sha256": digest}, "name": "vulnerable.txt"}]

    code, document = _statement(
        capsys, "env", "audit", "-r", "vulnerable.txt", "--osv-url", url + "/v1/querybatch"
    )
    assert code == 1
    predicate = document["statement"]["predicate"]
    (result,) = predicate["scanner"]["result"]
    assert result["id"] == "PYSEC-2018-28"
    assert {"method": "GHSA", "score": "HIGH"} in result["severity"]
    assert result["severity"][0]["method"] == "CVSS_V3"
    (annotation,) = result["annotations"]
    assert annotation["aliases"] == ["CVE-2018-18074", "GHSA-x84v-xcm2-53pg"]
    assert annotation["fixedVersions"] == ["2.20.0"]
    assert annotation["rating"] == "HIGH"  # CVSS 3.1 base score 7.5
    assert annotation["package"] == {
        "name": "requests",
        "version": "2.19.0",
        "purl": "pkg:pypi/requests@2.19.0",
    }
    assert predicate["scanner"]["db"]["uri"] == url
    assert predicate["audit"] == {
        "source": "requirements",
        "packages": 2,
        "auditor": predicate["audit"]["auditor"],
        "strict": True,
    }


def test_no_vulnerable_pin_passes_and_is_recorded(
    project: Path, osv_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, _ = osv_server
    code, out, _ = run(capsys, "env", "audit", "-r", "clean.txt", "--osv-url", url)
    assert code == 0
    assert "no known vulnerabilities in 2 packages" in out
    (entry,) = _entries(capsys)
    assert entry["predicateType"] == "https://in-toto.io/attestation/vulns/v0.2"
    code, document = _statement(
        capsys, "env", "audit", "-r", "clean.txt", "--osv-url", url, "--no-ledger"
    )
    assert code == 0 and document["recorded"] is None
    assert document["statement"]["predicate"]["scanner"]["result"] == []


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("error", "HTTP 500"),
        ("close", "failed: RemoteDisconnected"),
        ("garbage", "not JSON"),
        ("short", "where 2 results were expected"),
        ("redirect", "redirected"),
    ],
)
def test_a_failing_service_refuses_and_records_nothing(
    project: Path, osv_server: Any, capsys: pytest.CaptureFixture[str], mode: str, message: str
) -> None:
    url, handler, _ = osv_server
    handler.mode = mode
    code, out, err = run(capsys, "env", "audit", "-r", "vulnerable.txt", "--osv-url", url)
    assert code == 2, (out, err)
    assert message in err
    assert err.startswith("provenance: error: ") and "Traceback" not in err
    assert "no known vulnerabilities" not in out
    assert _entries(capsys) == []


def test_a_timeout_refuses(
    project: Path, osv_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, handler, _ = osv_server
    handler.mode = "slow"
    code, _, err = run(
        capsys, "env", "audit", "-r", "clean.txt", "--osv-url", url, "--timeout", "0.2"
    )
    assert code == 2 and "timed out" in err
    assert _entries(capsys) == []


def test_a_stopped_server_refuses(
    project: Path, osv_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, server = osv_server
    server.shutdown()
    server.server_close()
    code, out, err = run(capsys, "env", "audit", "-r", "clean.txt", "--osv-url", url)
    assert code == 2 and "cannot reach" in err
    assert out == "" and _entries(capsys) == []


def test_the_local_dump_gives_the_same_finding(
    project: Path, osv_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, _ = osv_server
    dump = osv_dump(tmp_path / "osv")
    (dump / "README.md").write_text("not a record\n")
    _, served = _statement(
        capsys, "env", "audit", "-r", "vulnerable.txt", "--osv-url", url, "--no-ledger"
    )
    code, local = _statement(capsys, "env", "audit", "-r", "vulnerable.txt", "--osv-db", str(dump))
    assert code == 1
    assert (
        local["statement"]["predicate"]["scanner"]["result"]
        == (served["statement"]["predicate"]["scanner"]["result"])
    )
    db = local["statement"]["predicate"]["scanner"]["db"]
    assert db["uri"] == dump.as_uri() and db["lastUpdate"] == "2021-09-21T22:17:45Z"
    assert db["version"].startswith("sha256:")
    # The same dump as a zip file (the form OSV publishes) gives the same answer.
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(dump.glob("*.json")):
            z.write(path, path.name)
    code, zipped = _statement(
        capsys, "env", "audit", "-r", "vulnerable.txt", "--osv-db", str(archive)
    )
    assert code == 1
    assert zipped["statement"]["predicate"]["scanner"]["db"]["version"] == db["version"]
    assert run(capsys, "env", "audit", "-r", "clean.txt", "--osv-db", str(dump))[0] == 0


def test_a_broken_dump_refuses(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = osv_dump(tmp_path / "osv")
    (dump / "GHSA-bad.json").write_text('{"id": "GHSA-bad", "modified": ')
    code, _, err = run(capsys, "env", "audit", "-r", "clean.txt", "--osv-db", str(dump))
    assert code == 2 and "GHSA-bad.json is not valid JSON" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, "env", "audit", "-r", "clean.txt", "--osv-db", str(empty))
    assert code == 2 and "holds no OSV records" in err
    assert _entries(capsys) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("requests>=2.19\n", "is not pinned to one exact version"),
        ("requests\n", "is not pinned to one exact version"),
        ("requests==2.*\n", "wildcard"),
        ("-r other.txt\nsix==1.16.0\n", "includes another file"),
        ("foo @ https://example.invalid/foo-1.0.whl\n", "URL requirement"),
        ("-e ./src\n", "names no package version"),
        ("requests==${VERSION}\n", "environment variables"),
        ("# nothing\n", "lists no requirements"),
    ],
)
def test_requirements_must_be_pinned_and_self_contained(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    dump = osv_dump(tmp_path / "osv")
    (project / "req.txt").write_text(text)
    code, _, err = run(capsys, "env", "audit", "-r", "req.txt", "--osv-db", str(dump))
    assert code == 2 and message in err
    assert _entries(capsys) == []


def test_markers_do_not_hide_a_pin(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump = osv_dump(tmp_path / "osv")
    (project / "req.txt").write_text('requests==2.19.0 ; python_version < "3"\n')
    code, out, _ = run(
        capsys, "env", "audit", "-r", "req.txt", "--osv-db", str(dump), "--no-ledger"
    )
    assert code == 1 and "PYSEC-2018-28" in out


def test_an_environment_is_audited_under_its_sbom_digest(
    project: Path, tmp_path: Path, osv_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _, _ = osv_server
    fake = build_wheel(tmp_path / "w", "requests", "2.19.0", {"requests/__init__.py": b""})
    make_venv(tmp_path / "venv", fake)
    venv = str(tmp_path / "venv")
    code, out, _ = run(capsys, "env", "sbom", "--python", venv, "-o", str(tmp_path / "s.json"))
    sbom_digest = out.split()[0]
    code, out, _ = run(capsys, "env", "audit", "--python", venv, "--osv-url", url)
    assert code == 1 and "requests==2.19.0  PYSEC-2018-28" in out
    assert sbom_digest in out
    code, document = _statement(
        capsys, "env", "audit", "--python", venv, "--osv-db", str(osv_dump(tmp_path / "db"))
    )
    assert code == 1 and document["subject"] == sbom_digest
    assert document["statement"]["subject"][0]["name"] == "python-environment"
    assert document["statement"]["predicate"]["audit"]["source"] == "environment"
    assert run(capsys, "env", "audit", "-r", "clean.txt", "--python", venv)[0] == 2


def test_an_unauditable_version_refuses(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = tmp_path / "venv"
    make_venv(venv)
    (site,) = (venv / "lib").glob("python*/site-packages")
    legacy = site / "oldstyle-1.0.dist-info"
    legacy.mkdir()
    (legacy / "METADATA").write_text(
        "Metadata-Version: 1.0\nName: oldstyle\nVersion: 1.0-legacy_x\n"
    )
    code, _, err = run(
        capsys, "env", "audit", "--python", str(venv), "--osv-db", str(osv_dump(tmp_path / "db"))
    )
    assert code == 2 and "oldstyle" in err and "not a PEP 440 version" in err
    assert "partial audit" in err


# -- matching, as the OSV schema defines it ------------------------------------------------


def _record(**affected: Any) -> Any:
    return parse_record(
        {
            "id": "TEST-1",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "Some_Pkg"}, **affected}],
        },
        what="test",
    )


@pytest.mark.parametrize(
    ("events", "affected", "unaffected"),
    [
        ([{"introduced": "0"}, {"fixed": "2.0"}], ["0.1", "1.9.9", "2.0rc1"], ["2.0", "3"]),
        ([{"introduced": "1.0"}, {"last_affected": "1.4"}], ["1.0", "1.4"], ["0.9", "1.4.1"]),
        (
            [{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.3"}],
            ["1.2", "2.1"],
            ["0.5", "1.7", "2.3"],
        ),
        ([{"fixed": "2.3"}, {"introduced": "2.0"}], ["2.0", "2.2"], ["1.9", "2.3"]),  # unsorted
        ([{"introduced": "1.0"}], ["1.0", "99"], ["0.9"]),
    ],
)
def test_ecosystem_ranges(
    events: list[dict[str, str]], affected: list[str], unaffected: list[str]
) -> None:
    record = _record(ranges=[{"type": "ECOSYSTEM", "events": events}])
    for version in affected:
        assert affects(record, "some-pkg", Version(version)), version
    for version in unaffected:
        assert not affects(record, "some-pkg", Version(version)), version
    assert not affects(record, "other", Version(affected[0]))


def test_versions_lists_git_ranges_and_withdrawn_records() -> None:
    (pysec,) = [r for r in osv_records() if r["id"] == "PYSEC-2018-28"]
    record = parse_record(pysec, what="PYSEC")
    assert affects(record, "requests", Version("0.12.1"))  # listed as 0.12.01
    assert affects(record, "requests", Version("2.19.1"))
    assert not affects(record, "requests", Version("2.20.0"))
    listed = _record(versions=["1.0", "1.2"])
    assert affects(listed, "some-pkg", Version("1.2")) and not affects(
        listed, "some-pkg", Version("1.1")
    )
    git_only = _record(ranges=[{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}]}])
    with pytest.raises(OsvError, match="cannot be evaluated offline"):
        affects(git_only, "some-pkg", Version("1.0"))
    assert affects(_record(), "some-pkg", Version("1.0"))  # neither ranges nor versions: all
    bad = _record(
        ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version!"}]}]
    )
    with pytest.raises(OsvError, match="not a PEP 440 version"):
        affects(bad, "some-pkg", Version("1.0"))
    withdrawn = parse_record({**pysec, "withdrawn": "2024-01-01T00:00:00Z"}, what="w")
    assert not affects(withdrawn, "requests", Version("2.19.0"))
    with pytest.raises(OsvError, match="schema version"):
        parse_record({**pysec, "schema_version": "2.0.0"}, what="future")


@pytest.mark.online
@pytest.mark.skipif(
    __import__("os").environ.get("PROVENANCE_ONLINE_TESTS") != "1", reason="needs the network"
)
def test_the_public_osv_service(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "req.txt").write_text(VULNERABLE)
    code, out, _ = run(capsys, "env", "audit", "-r", str(tmp_path / "req.txt"), "--no-ledger")
    assert code == 1 and "CVE-2018-18074" in out


def test_fixture_records_are_unchanged() -> None:
    """The recorded advisories are byte for byte what was published (fixtures/osv/README.md)."""
    import hashlib

    from tests.env_helpers import FIXTURES

    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in FIXTURES.iterdir()
        if p.suffix in (".json", ".yaml")
    }
    assert digests == {
        "GHSA-x84v-xcm2-53pg.json": GHSA_SHA256,
        "PYSEC-2018-28.yaml": PYSEC_SHA256,
    }
