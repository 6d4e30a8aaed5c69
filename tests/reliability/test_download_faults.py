"""Downloads beyond tests/test_download.py (dropped connections, checksum mismatch, HTTP errors
against a misbehaving 127.0.0.1 server): a download process killed mid-file, and a failed
download reaching the user through the datamodule and the CLI error report."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rnnlab.data import download as dl
from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.data.download import download
from rnnlab.errors import exit_on_error

DATA = random.Random(1).randbytes(400_000)
SHA = hashlib.sha256(DATA).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """/hang-first: the first response stops half-way and hangs; later ones honour Range.
    /404: not found."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        server.ranges.append(self.headers.get("Range"))
        if self.path == "/404":
            self.send_error(404)
            return
        start = int(self.headers.get("Range", "bytes=0-")[6:].rstrip("-") or 0)
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
        self.send_header("Content-Length", str(len(DATA) - start))
        self.end_headers()
        if len(server.ranges) == 1:
            self.wfile.write(DATA[: len(DATA) // 2])
            self.wfile.flush()
            server.release.wait(30)  # hang until the test is done with the killed client
            return
        self.wfile.write(DATA[start:])


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Handler) as srv:
        srv.ranges, srv.release = [], threading.Event()
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            yield srv
        finally:
            srv.release.set()  # let a hanging response end
            srv.shutdown()


def _url(srv: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


_CLIENT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rnnlab.data.download import download
    download(sys.argv[1], Path(sys.argv[2]), sys.argv[3], timeout=60, progress=False)
    """
)


def test_download_killed_mid_file_resumes_and_never_counts_as_complete(
    server: ThreadingHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("no_proxy", "*")
    dest = tmp_path / "aclImdb_v1.tar.gz"
    part = dest.with_name(dest.name + ".part")
    client = subprocess.Popen(
        [sys.executable, "-c", _CLIENT, _url(server, "/hang-first"), str(dest), SHA],
        env={**os.environ, "no_proxy": "*"},
    )
    deadline = time.monotonic() + 120
    while not (part.exists() and part.stat().st_size >= len(DATA) // 2):
        assert time.monotonic() < deadline and client.poll() is None, "download never started"
        time.sleep(0.05)
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    assert not dest.exists()  # a later run cannot take the half file for the archive
    assert part.read_bytes() == DATA[: len(DATA) // 2]

    assert download(_url(server, "/hang-first"), dest, SHA, progress=False).read_bytes() == DATA
    assert server.ranges == [None, f"bytes={len(DATA) // 2}-"]  # resumed, not restarted
    assert not part.exists()


def test_failed_download_reaches_the_user_as_one_paragraph(
    server: ThreadingHTTPServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(dl, "IMDB_URL", _url(server, "/404"))
    monkeypatch.setattr(dl, "_RETRY_DELAY_S", 0.0)
    datamodule = IMDBDataModule(path=None, data_dir=str(tmp_path / "data"), cache_dir=None)
    with pytest.raises(SystemExit) as info, exit_on_error():
        datamodule.prepare_data()
    assert info.value.code == 1
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"Error: Downloading {_url(server, '/404')}")
    assert "HTTP 404" in message and "data.path=" in message and "\n" not in message
    assert not list((tmp_path / "data").glob("aclImdb_v1.tar.gz*"))  # nothing left behind
