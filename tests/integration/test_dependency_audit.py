"""The dependency audit of CI (``scripts/audit_deps.py``) against an OSV-compatible feed on loopback.

The feed answers pip-audit's real queries for the packages installed here; one advisory is put on a
package that is installed, so the audit must fail naming it, and pass once the advisory is accepted with
a reason. A feed that cannot answer must leave the audit saying that nothing was audited.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit_deps.py"
PACKAGE = "orjson"
ADVISORY = "PYSEC-0000-TEST"


class Feed:
    """What the fake OSV service answers: advisories by package name, or an error status for all."""

    def __init__(self) -> None:
        self.advisories: dict[str, list[dict[str, object]]] = {}
        self.status = 200
        self.queries = 0


@pytest.fixture
def feed() -> Iterator[tuple[Feed, str]]:
    state = Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.queries += 1
            vulns = state.advisories.get(query["package"]["name"], [])
            body = json.dumps({"vulns": vulns} if vulns else {}).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


def _advisory() -> dict[str, object]:
    return {
        "id": ADVISORY,
        "aliases": ["CVE-0000-0001"],
        "summary": "a test advisory",
        "affected": [
            {
                "package": {"name": PACKAGE, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "999.0"}]}],
            }
        ],
    }


def _audit(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--vulnerability-service", "osv", "--osv-url", url]
    command += ["--cache-dir", str(tmp_path / "cache"), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def test_a_known_vulnerability_fails_until_it_is_accepted_with_a_reason(
    feed: tuple[Feed, str], tmp_path: Path
) -> None:
    state, url = feed
    state.advisories[PACKAGE] = [_advisory()]
    failed = _audit(url, tmp_path, "--ignore-file", str(tmp_path / "none"))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"{PACKAGE} {version(PACKAGE)}: {ADVISORY} (CVE-0000-0001); fixed in: 999.0" in failed.stdout
    assert ".ci/audit-ignore" in failed.stdout
    assert state.queries > 10  # every installed package was asked about

    ignore = tmp_path / "audit-ignore"
    ignore.write_text(f"# accepted\n{ADVISORY} not reachable: convoscope never calls the affected API\n")
    accepted = _audit(url, tmp_path, "--ignore-file", str(ignore))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "no known vulnerabilities; 1 accepted advisories ignored" in accepted.stdout

    ignore.write_text(f"{ADVISORY}\n")
    unexplained = _audit(url, tmp_path, "--ignore-file", str(ignore))
    assert unexplained.returncode == 1
    assert f"{ADVISORY} is ignored without a reason" in unexplained.stdout + unexplained.stderr


def test_a_feed_that_cannot_answer_audits_nothing_and_says_so(feed: tuple[Feed, str], tmp_path: Path) -> None:
    state, url = feed
    state.status = 503
    lenient = _audit(url, tmp_path)
    assert lenient.returncode == 0
    assert "NOT AUDITED" in lenient.stdout
    strict = _audit(url, tmp_path, "--require-service")
    assert strict.returncode == 1 and "NOT AUDITED" in strict.stdout
