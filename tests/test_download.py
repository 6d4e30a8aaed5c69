"""Tests for rnnlab.data.download against a deliberately misbehaving server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rnnlab.data import download as dl
from rnnlab.data.download import DownloadError, download, ensure_imdb_archive

DATA = random.Random(0).randbytes(300_000)
SHA = hashlib.sha256(DATA).hexdigest()
CORRUPT = DATA[:1000] + bytes([DATA[1000] ^ 0xFF]) + DATA[1001:]
CORRUPT_SHA = hashlib.sha256(CORRUPT).hexdigest()
TIMEOUT = 0.5


class _Server(ThreadingHTTPServer):
    """Records every request as (path, Range header) and counts hits per path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str | None]] = []
        self.release = threading.Event()  # ends stalls on teardown

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def ranges(self, path: str) -> list[str | None]:
        with self.lock:
            return [r for p, r in self.requests if p == path]


class _Handler(BaseHTTPRequestHandler):
    """Serves DATA at paths that each misbehave in one way.

    /normal full 200; /range honours Range; /norange ignores it; /drop-once, /reset-once and
    /stall-once break the first response half-way (EOF, TCP reset, silence) then honour Range;
    /drop-always always breaks; /404 and /500 fail; /corrupt serves different bytes.
    """

    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path, range_header = self.path, self.headers.get("Range")
        with self.server.lock:
            self.server.requests.append((path, range_header))
            first = sum(p == path for p, _ in self.server.requests) == 1
        if path in ("/404", "/500"):
            self.send_error(int(path[1:]))
            return
        body = CORRUPT if path == "/corrupt" else DATA
        honours_range = path in ("/range", "/drop-once", "/reset-once", "/stall-once")
        breaks = path == "/drop-always" or (path.endswith("-once") and first)

        start = 0
        if range_header and honours_range:
            start = int(range_header.removeprefix("bytes=").removesuffix("-"))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if not breaks:
            self.wfile.write(payload)
            return
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.close_connection = True
        if path == "/stall-once":
            self.server.release.wait(5)
        elif path == "/reset-once":  # close with RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "_RETRY_DELAY_S", 0.0)
    monkeypatch.setenv("no_proxy", "*")  # never send 127.0.0.1 through a proxy


def _get(srv: _Server, path: str, dest: Path, sha256: str | None = SHA, retries: int = 3) -> Path:
    return download(srv.url(path), dest, sha256, retries=retries, timeout=TIMEOUT, progress=False)


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


@pytest.mark.parametrize("progress", [False, True])
def test_download_writes_exact_bytes(server: _Server, tmp_path: Path, progress: bool) -> None:
    dest = tmp_path / "sub" / "a.bin"
    out = download(server.url("/normal"), dest, SHA, timeout=TIMEOUT, progress=progress)
    assert out == dest
    assert dest.read_bytes() == DATA
    assert not _part(dest).exists()
    assert server.ranges("/normal") == [None]


def test_no_checksum_downloads_whatever_is_served(server: _Server, tmp_path: Path) -> None:
    dest = _get(server, "/corrupt", tmp_path / "a.bin", sha256=None)
    assert dest.read_bytes() == CORRUPT


def test_existing_verified_file_makes_no_request(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    dest.write_bytes(DATA)
    assert _get(server, "/normal", dest, sha256=SHA.upper()) == dest
    other = tmp_path / "b.bin"
    other.write_bytes(b"anything")
    assert _get(server, "/normal", other, sha256=None).read_bytes() == b"anything"
    assert server.requests == []


def test_existing_wrong_file_is_replaced(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"stale")
    assert _get(server, "/normal", dest).read_bytes() == DATA
    assert len(server.requests) == 1


def test_resumes_existing_part_file(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    _part(dest).write_bytes(DATA[:123_456])
    assert _get(server, "/range", dest).read_bytes() == DATA
    assert server.ranges("/range") == ["bytes=123456-"]
    assert not _part(dest).exists()


def test_complete_part_file_is_finished_on_416(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    _part(dest).write_bytes(DATA)
    assert _get(server, "/range", dest).read_bytes() == DATA
    assert server.ranges("/range") == [f"bytes={len(DATA)}-"]


def test_oversized_part_file_is_restarted(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    _part(dest).write_bytes(DATA + b"junk")
    assert _get(server, "/range", dest).read_bytes() == DATA
    assert server.ranges("/range") == [f"bytes={len(DATA) + 4}-", None]


@pytest.mark.parametrize("path", ["/drop-once", "/reset-once", "/stall-once"])
def test_broken_connection_is_resumed(server: _Server, tmp_path: Path, path: str) -> None:
    dest = tmp_path / "a.bin"
    started = time.monotonic()
    assert _get(server, path, dest).read_bytes() == DATA
    # /stall-once holds its first connection for 5 s: only the read timeout gets us out early.
    assert time.monotonic() - started < 3
    ranges = server.ranges(path)
    assert len(ranges) == 2 and ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=")
    if path != "/reset-once":  # a reset may discard bytes the client had not read yet
        assert ranges[1] == f"bytes={len(DATA) // 2}-"
    assert not _part(dest).exists()


def test_always_dropping_server_raises(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    with pytest.raises(DownloadError) as info:
        _get(server, "/drop-always", dest, retries=2)
    message = str(info.value)
    assert server.url("/drop-always") in message and str(dest) in message
    assert f"{len(DATA) // 2} of {len(DATA)} bytes" in message
    assert "resumed" in message
    assert len(server.requests) == 3
    assert not dest.exists()
    assert DATA.startswith(_part(dest).read_bytes())  # only a valid prefix may stay


def test_checksum_mismatch_raises_and_cleans_up(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    with pytest.raises(DownloadError) as info:
        _get(server, "/corrupt", dest)
    assert SHA in str(info.value) and CORRUPT_SHA in str(info.value)
    assert not dest.exists()
    assert not _part(dest).exists()


def test_stale_part_with_range_server_fails_then_recovers(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    _part(dest).write_bytes(CORRUPT[:2000])
    with pytest.raises(DownloadError, match="sha256"):
        _get(server, "/range", dest)
    assert not _part(dest).exists() and not dest.exists()
    assert _get(server, "/range", dest).read_bytes() == DATA


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_raises_with_status(server: _Server, tmp_path: Path, status: int) -> None:
    dest = tmp_path / "a.bin"
    with pytest.raises(DownloadError, match=str(status)) as info:
        _get(server, f"/{status}", dest)
    assert server.url(f"/{status}") in str(info.value)
    assert not dest.exists()
    assert not _part(dest).exists()
    assert len(server.requests) == 1


def test_server_ignoring_range_overwrites_stale_part(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "a.bin"
    _part(dest).write_bytes(b"x" * 50_000)
    assert _get(server, "/norange", dest).read_bytes() == DATA
    assert server.ranges("/norange") == ["bytes=50000-"]
    assert not _part(dest).exists()


def test_unreachable_server_raises(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    dest = tmp_path / "a.bin"
    with pytest.raises(DownloadError, match="connection"):
        download(f"http://127.0.0.1:{port}/x", dest, SHA, retries=1, timeout=TIMEOUT)
    assert not dest.exists()


def test_ensure_imdb_archive(
    server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dl, "IMDB_SHA256", SHA)
    monkeypatch.setattr(dl, "IMDB_URL", server.url("/normal"))
    path = ensure_imdb_archive(tmp_path / "data")
    assert path == tmp_path / "data" / "aclImdb_v1.tar.gz"
    assert path.read_bytes() == DATA

    monkeypatch.setattr(dl, "IMDB_URL", server.url("/404"))
    with pytest.raises(DownloadError, match="data.path="):
        ensure_imdb_archive(tmp_path / "other")


def test_imdb_constants() -> None:
    assert dl.IMDB_URL.endswith("/aclImdb_v1.tar.gz")
    assert len(dl.IMDB_SHA256) == 64 and int(dl.IMDB_SHA256, 16) >= 0
    assert dl.IMDB_SIZE == 84_125_825
