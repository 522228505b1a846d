"""ClickHouse's HTTP interface in front of one chDB data directory, for tests of the store's server path.

The store talks to a ClickHouse server through clickhouse-connect's HTTP client, and no ClickHouse server
can be installed everywhere the tests run. chDB embeds the server's engine, so this front answers the HTTP
requests the client really sends, on loopback, and the engine runs them exactly as it runs the embedded
store's: queries with the output format they name (``FORMAT Native`` for the client's reads), inserts with
their data in the body (``INSERT … FORMAT Native`` plus the block, compressed as the client sends it),
bound parameters (``param_*``, in the URL or a multipart form), settings and ``database`` in the URL,
sessions (``session_id``), ``/ping``, the headers the client reads (``X-ClickHouse-Summary``,
``-Query-Id``, ``-Format``, ``-Timezone``, ``-Exception-Code``) and failures as the server reports them
(an HTTP error status with ``Code: N. DB::Exception: …`` in the body).

What it leaves out, because no convoscope path uses it: authentication (any user is accepted), progress
headers, the ``decompress`` and ``client_protocol_version`` parameters (the client probes for the latter,
finds it unsupported and reads plain ``Native``, as behind a proxy that drops it) and external data. A URL
setting is applied to the session for the one request; a ``SET`` statement in a session keeps its value
unless a later request carries the same setting in its URL.

Run it as ``python -m convoscope.testing.chfront --path DIR --port N`` (port 0 picks a free port; the
first line of stdout names the URL), or from Python with :func:`running_front`. ``--report-version X.Y``
answers ``version()`` with that version, as an older server would, for tests of the version check.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import gzip
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["ClickHouseFront", "running_front", "serve"]

_TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "user",
        "password",
        "quota_key",
        "compress",
        "decompress",
        "buffer_size",
        "wait_end_of_query",
        "client_protocol_version",
        "role",
        "stacktrace",
    }
)
"""URL parameters of the HTTP interface that are not settings."""

_RESULT_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "CHECK", "(")
"""First words of statements that produce a result set, which the server announces in ``X-ClickHouse-Format``
even when it has no rows (the client's ``command`` then answers ``""`` rather than a summary)."""

_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_INSERT_WITH_DATA = re.compile(
    rb"^\s*(INSERT\b.*?)\s+FORMAT\s+(\w+)[ \t]*(?:\r?\n)?", re.IGNORECASE | re.DOTALL
)
"""An ``INSERT … FORMAT name`` statement and where its data starts: after the first newline that follows
the format name, as the server's parser has it (a Native block may itself start with whitespace bytes)."""

_INSERT_SETTINGS = re.compile(r"\s+SETTINGS\s+", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)\.")
_HTTP_STATUS = {62: 400, 27: 400, 53: 400, 60: 404, 81: 404, 46: 404, 373: 409}
"""The server's HTTP status for a few error codes (syntax and parse errors, unknown table, database or
function, a locked session); every other error is a 500, as on the server."""

_BINARY_FORMATS = frozenset(
    {"Native", "RowBinary", "RowBinaryWithNamesAndTypes", "Arrow", "ArrowStream", "Parquet"}
)


def _codecs() -> dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]]:
    """Content-Encoding name → (compress, decompress), for the encodings this interpreter can do."""
    found: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes], bytes]]] = {
        "gzip": (gzip.compress, gzip.decompress),
        "deflate": (zlib.compress, zlib.decompress),
    }
    try:
        import lz4.frame  # type: ignore[import-untyped]

        found["lz4"] = (lz4.frame.compress, lz4.frame.decompress)
    except ImportError:
        pass
    try:
        from backports import zstd

        found["zstd"] = (zstd.compress, zstd.decompress)
    except ImportError:
        pass
    return found


_CODECS = _codecs()


class _QueryFailed(Exception):
    """An engine error, with the code and text the server would send."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


@dataclass
class _Session:
    """One chDB connection: its ``USE``/``SET`` state is what a ClickHouse session keeps between requests."""

    conn: Any
    timeout_s: float = 60.0
    used_at: float = field(default_factory=time.monotonic)
    database: str | None = None
    url_settings: dict[str, str] = field(default_factory=dict)
    busy: bool = False


@dataclass
class _Answer:
    status: int
    body: bytes
    headers: dict[str, str]


class ClickHouseFront:
    """The engine side: one chDB data directory, its sessions, and the meaning of each request.

    chDB runs one engine per process; every statement runs under one lock, so the threads of the HTTP
    server only overlap in reading requests and writing answers.
    """

    def __init__(self, path: Path, *, report_version: str | None = None) -> None:
        import chdb

        self._chdb = chdb
        self._path = str(path.resolve())
        path.mkdir(parents=True, exist_ok=True)
        self._engine = chdb.connect(self._path)  # keeps the engine up while no session is open
        self._spool_dir = tempfile.TemporaryDirectory(prefix="chfront-")
        self._spool = self._spool_dir.name
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self._report_version = report_version
        version, zone = (
            self._engine.query("SELECT version(), timezone()", "TabSeparated").bytes().split(b"\t")
        )
        self.version = report_version or version.decode()
        self.timezone = zone.decode().strip()
        self.display_name = socket.gethostname()

    def close(self) -> None:
        """Close every session and the engine."""
        with self._lock:
            for session in self._sessions.values():
                session.conn.close()
            self._sessions.clear()
            self._engine.close()
        self._spool_dir.cleanup()

    # -- one request ---------------------------------------------------------------------------------

    def answer(self, params: dict[str, str], body: bytes) -> _Answer:
        """The response to ``POST /`` (or ``GET /``) with these URL parameters and this (decoded) body."""
        query_id = params.get("query_id") or str(uuid.uuid4())
        headers = {
            "X-ClickHouse-Server-Display-Name": self.display_name,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.timezone,
        }
        text = params.get("query", "").encode()
        if text and body:
            text += b"\n"
        text += body
        settings = {
            k: v for k, v in params.items() if k not in _TRANSPORT_PARAMS and not k.startswith("param_")
        }
        bound = {k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")}
        try:
            if not text.strip():
                raise _QueryFailed(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
            session, owned = self._session(params)
            try:
                output, fmt, summary = self._run(session, params, settings, bound, text)
            finally:
                self._release(session, owned)
        except _QueryFailed as failed:
            headers["X-ClickHouse-Exception-Code"] = str(failed.code)
            headers["Content-Type"] = "text/plain; charset=UTF-8"
            message = f"{failed.text} (version {self.version})\n".encode()
            return _Answer(_HTTP_STATUS.get(failed.code, 500), message, headers)
        headers["X-ClickHouse-Summary"] = json.dumps(summary, separators=(",", ":"))
        if fmt is not None:
            headers["X-ClickHouse-Format"] = fmt
            binary = fmt in _BINARY_FORMATS
            headers["Content-Type"] = "application/octet-stream" if binary else "text/plain; charset=UTF-8"
        return _Answer(200, output, headers)

    def _session(self, params: dict[str, str]) -> tuple[_Session, bool]:
        """The named session (created on first use), or a connection of this request's own."""
        session_id = params.get("session_id")
        now = time.monotonic()
        with self._sessions_lock:
            expired = [k for k, s in self._sessions.items() if not s.busy and now - s.used_at > s.timeout_s]
            stale = [self._sessions.pop(k) for k in expired]
        with self._lock:
            for old in stale:
                old.conn.close()
        if not session_id:
            with self._lock:
                return _Session(self._chdb.connect(self._path)), True
        timeout = float(params.get("session_timeout") or 60)
        with self._sessions_lock:
            found = self._sessions.get(session_id)
            if found is None:
                if params.get("session_check") == "1":
                    raise _QueryFailed(
                        372, f"Code: 372. DB::Exception: Session {session_id} not found. (SESSION_NOT_FOUND)"
                    )
                with self._lock:
                    session = _Session(self._chdb.connect(self._path), timeout_s=timeout)
                self._sessions[session_id] = session
            elif found.busy:
                raise _QueryFailed(
                    373,
                    f"Code: 373. DB::Exception: Session {session_id} is locked by a concurrent client. "
                    "(SESSION_IS_LOCKED)",
                )
            else:
                session = found
            session.busy = True
            session.timeout_s = timeout
            return session, False

    def _release(self, session: _Session, owned: bool) -> None:
        if owned:
            with self._lock:
                session.conn.close()
            return
        with self._sessions_lock:
            session.busy = False
            session.used_at = time.monotonic()

    def _run(
        self,
        session: _Session,
        params: dict[str, str],
        settings: dict[str, str],
        bound: dict[str, str],
        text: bytes,
    ) -> tuple[bytes, str | None, dict[str, str]]:
        """Run one statement on the session: its output, its format (None: no result set), the summary."""
        started = time.perf_counter_ns()
        insert = _INSERT_WITH_DATA.match(text)
        with self._lock:
            self._prepare(session, params.get("database"), settings)
            if insert is not None and text[insert.end() :]:
                statement, fmt = insert.group(1).decode(), insert.group(2).decode()
                result = self._insert(session, statement, fmt, text[insert.end() :])
                summary = _summary(result, started, written=True)
                return b"", None, summary
            sql = text.decode()
            if self._report_version is not None:
                sql = re.sub(r"\bversion\(\)", f"'{self._report_version}'", sql, flags=re.IGNORECASE)
            default = params.get("default_format") or "TabSeparated"
            result = self._engine_call(lambda: session.conn.query(sql, default, params=bound))
        named = _TRAILING_FORMAT.search(sql)
        fmt = named.group(1) if named else default
        output = result.bytes() or b""
        produces = sql.lstrip().upper().startswith(_RESULT_STATEMENTS)
        summary = _summary(result, started, written=False)
        return output, fmt if output or produces else None, summary

    def _prepare(self, session: _Session, database: str | None, settings: dict[str, str]) -> None:
        """Point the session at the request's database and settings; only what changed is sent."""
        if database and database != session.database:
            self._statement(session, f"USE `{_identifier(database)}`")
            session.database = database
        for name in [k for k in session.url_settings if k not in settings]:
            self._statement(session, f"SET {_identifier(name)} = DEFAULT")
            del session.url_settings[name]
        for name, value in settings.items():
            if session.url_settings.get(name) != value:
                quoted = value.replace("\\", "\\\\").replace("'", "\\'")
                self._statement(session, f"SET {_identifier(name)} = '{quoted}'")
                session.url_settings[name] = value

    def _statement(self, session: _Session, sql: str) -> None:
        self._engine_call(lambda: session.conn.query(sql, "TabSeparated"))

    def _insert(self, session: _Session, statement: str, fmt: str, data: bytes) -> Any:
        """Insert the body through the engine's ordinary INSERT (``FROM INFILE``), so constraints and the
        error texts ("… at row N") are the server's; chDB's streaming inserter skips constraints."""
        with tempfile.NamedTemporaryFile(dir=self._spool, suffix=f".{fmt}") as spool:
            spool.write(data)
            spool.flush()
            settings = _INSERT_SETTINGS.search(statement)
            split = settings.start() if settings else len(statement)
            name = spool.name.replace("\\", "\\\\").replace("'", "\\'")
            sql = f"{statement[:split]} FROM INFILE '{name}'{statement[split:]} FORMAT {fmt}"
            return self._engine_call(lambda: session.conn.query(sql, "TabSeparated"))

    @staticmethod
    def _engine_call(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as exc:  # chDB raises its own error types; each carries the server's text
            message = str(exc)
            start = message.find("Code: ")
            text = message[start:].strip() if start >= 0 else f"Code: 1001. DB::Exception: {message.strip()}"
            found = _CODE.search(text)
            raise _QueryFailed(int(found.group(1)) if found else 1001, text) from exc


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise _QueryFailed(
            115, f"Code: 115. DB::Exception: Unknown setting or database name {name!r}. (UNKNOWN_SETTING)"
        )
    return name


def _summary(result: Any, started_ns: int, *, written: bool) -> dict[str, str]:
    """``X-ClickHouse-Summary`` as the server spells it (every number a string)."""
    rows = int(result.rows_written()) if written else int(result.rows_read())
    size = int(result.bytes_written()) if written else int(result.bytes_read())
    return {
        "read_rows": "0" if written else str(rows),
        "read_bytes": "0" if written else str(size),
        "written_rows": str(rows) if written else "0",
        "written_bytes": str(size) if written else "0",
        "total_rows_to_read": "0",
        "result_rows": "0",
        "result_bytes": "0",
        "elapsed_ns": str(time.perf_counter_ns() - started_ns),
    }


# -- HTTP ----------------------------------------------------------------------------------------------


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a ``multipart/form-data`` body (the client sends long bound parameters this way)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    """Buffered: the status line, headers and body leave in one write (the server flushes after each
    request), since a small write after another waits out the peer's delayed ACK (40 ms on Linux)."""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test run would otherwise print a line per statement."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if encoding and encoding != "identity":
            if encoding not in _CODECS:
                raise _QueryFailed(
                    1001, f"Code: 1001. DB::Exception: Unknown Content-Encoding {encoding!r}. (STD_EXCEPTION)"
                )
            body = _CODECS[encoding][1](body)
        return body

    def _serve(self) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") == "/ping":
            self._send(_Answer(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"}))
            return
        if url.path not in ("", "/"):
            self._send(_Answer(404, b"There is no handle " + url.path.encode() + b"\n", {}))
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            body = self._read_body() if self.command == "POST" else b""
        except _QueryFailed as failed:
            headers = {"X-ClickHouse-Exception-Code": str(failed.code)}
            self._send(_Answer(400, f"{failed.text}\n".encode(), headers))
            return
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            params.update(_form_fields(content_type, body))
            body = b""
        answer = self.server.front.answer(params, body)
        if answer.status == 200 and params.get("enable_http_compression") == "1":
            for name in (n.strip().lower() for n in self.headers.get("Accept-Encoding", "").split(",")):
                if name in _CODECS:
                    answer.body = _CODECS[name][0](answer.body)
                    answer.headers["Content-Encoding"] = name
                    break
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], front: ClickHouseFront) -> None:
        super().__init__(address, _Handler)
        self.front = front

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (a killed process's pooled connection) is not worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def serve(path: Path, *, host: str = "127.0.0.1", port: int = 0, report_version: str | None = None) -> None:
    """Serve until interrupted; the first line of stdout is the URL (useful with port 0)."""
    front = ClickHouseFront(path, report_version=report_version)
    server = _Server((host, port), front)
    print(f"http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        front.close()


@contextmanager
def running_front(
    path: Path, *, report_version: str | None = None, start_timeout_s: float = 60.0
) -> Iterator[str]:
    """A front in a process of its own (chDB allows one data directory per process) on a free loopback
    port; yields its URL once ``/ping`` answers, and stops it afterwards."""
    command = [sys.executable, "-m", "convoscope.testing.chfront", "--path", str(path), "--port", "0"]
    if report_version is not None:
        command += ["--report-version", report_version]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url:
            raise RuntimeError(f"the ClickHouse front exited with {process.wait(5)} before it listened")
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as reply:
                    if reply.read() == b"Ok.\n":
                        break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the ClickHouse front at {url} did not answer /ping") from None
                time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGINT)  # the front closes the engine on KeyboardInterrupt
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--path", type=Path, required=True, help="the chDB data directory to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument("--report-version", help="answer version() with this version (e.g. 23.3)")
    options = parser.parse_args(argv)
    serve(options.path, host=options.host, port=options.port, report_version=options.report_version)


if __name__ == "__main__":
    main()
