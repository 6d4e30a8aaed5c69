"""Resumable, checksummed downloads of the IMDB archive.

The archive is 80 MiB from a university server, so a download must survive dropped
connections (resume with HTTP Range), never leave a truncated file that a later run would
take for complete (write to ``.part``, verify sha256, then rename), and fail with a message
that says what to do next. Only the standard library is used for HTTP.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from rnnlab.atomic import fsync_dir
from rnnlab.errors import UserError

logger = logging.getLogger(__name__)

IMDB_URL: str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# Same values as tensorflow_datasets/datasets/imdb_reviews/checksums.tsv.
IMDB_SHA256: str = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
IMDB_SIZE: int = 84125825

_CHUNK = 1 << 16
_RETRY_DELAY_S = 1.0  # doubled after each failed attempt; tests set it to 0
_USER_AGENT = "rnnlab-downloader"


class DownloadError(UserError, RuntimeError):
    """A download failed; the message says what went wrong and how to fix it."""


class _Transient(Exception):
    """A failure worth retrying: the connection dropped, stalled or never opened."""


class _HttpStatus(Exception):
    """The server answered with an error status; retrying would not help."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"HTTP {code} {reason}".strip())
        self.code = code


def _sha256_of(path: Path) -> hashlib._Hash:
    """Hash an existing file, so a resumed download can keep hashing where it left off."""
    hasher = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher


def _range_start(content_range: str | None) -> int | None:
    """First byte of a ``Content-Range: bytes START-END/TOTAL`` header, None if unparsable."""
    try:
        return int((content_range or "").removeprefix("bytes ").split("-", 1)[0])
    except ValueError:
        return None


def _fetch(url: str, part: Path, *, timeout: float, progress: bool) -> str:
    """Make one attempt to complete ``part`` (resuming if possible); return its sha256."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            # The .part file is at least as long as the remote file.
            if (exc.headers.get("Content-Range") or "").endswith(f"/{offset}"):
                return _sha256_of(part).hexdigest()  # complete; the caller verifies it
            part.unlink()
            raise _Transient("the partial file was longer than the remote file") from exc
        raise _HttpStatus(exc.code, str(exc.reason)) from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeout, reset...
        raise _Transient(f"could not connect: {exc}") from exc

    with resp:
        if resp.status not in (200, 206):
            raise _HttpStatus(resp.status, resp.reason)
        if resp.status == 206 and _range_start(resp.headers.get("Content-Range")) == offset:
            logger.info("Resuming %s at byte %d", url, offset)
            hasher, mode = _sha256_of(part), "ab"
        else:
            if offset:
                logger.info("Server did not resume %s; starting over", url)
                if resp.status == 206:  # resumed at the wrong place: unusable
                    part.unlink()
                    raise _Transient("the server resumed at the wrong offset")
            offset, hasher, mode = 0, hashlib.sha256(), "wb"
        length = resp.headers.get("Content-Length")
        expected = offset + int(length) if length and length.isdigit() else None
        received = offset
        with (
            part.open(mode) as f,
            tqdm(
                total=expected,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            try:
                while chunk := resp.read1(_CHUNK):
                    f.write(chunk)
                    hasher.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(
                    f"the connection broke after {received} of {expected or '?'} bytes ({exc!r})"
                ) from exc
            finally:
                f.flush()
                os.fsync(f.fileno())
    if expected is not None and received < expected:
        raise _Transient(f"the connection closed after {received} of {expected} bytes")
    return hasher.hexdigest()


def download(
    url: str,
    dest: Path,
    sha256: str | None,
    *,
    retries: int = 3,
    timeout: float = 60,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` unless a verified copy is already there; return ``dest``.

    Bytes go to ``dest.part`` and are resumed from there after a dropped connection (up to
    ``retries`` more attempts, or on the next run); ``dest`` only appears once its sha256
    matches, so an existing ``dest`` can be trusted. Every failure raises DownloadError.
    """
    dest = Path(dest)
    sha256 = sha256.lower() if sha256 else None
    retries = max(retries, 0)
    if dest.exists():
        if sha256 is None or _sha256_of(dest).hexdigest() == sha256:
            logger.debug("%s already present", dest)
            return dest
        logger.warning("%s exists but its sha256 differs; downloading it again", dest)

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    logger.info("Downloading %s to %s", url, dest)
    for attempt in range(retries + 1):
        try:
            digest = _fetch(url, part, timeout=timeout, progress=progress)
            break
        except _HttpStatus as exc:
            raise DownloadError(
                f"Downloading {url} to {dest} failed: the server answered {exc}. Check the "
                f"URL or try again later; you can also download the file by hand and put it "
                f"at {dest}."
            ) from exc
        except _Transient as exc:
            problem = exc
            if attempt < retries:
                delay = _RETRY_DELAY_S * 2**attempt
                logger.warning("%s (attempt %d/%d); retrying", exc, attempt + 1, retries + 1)
                time.sleep(delay)
    else:
        raise DownloadError(
            f"Downloading {url} to {dest} failed after {retries + 1} attempts: {problem}. "
            f"Check your connection and run again: the partial file {part} will be resumed. "
            f"You can also download the file by hand and put it at {dest}."
        ) from problem

    if sha256 is not None and digest != sha256:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"Downloading {url} to {dest} failed: the data has sha256 {digest} but "
            f"{sha256} was expected, so it was deleted. The server (or a proxy or captive "
            f"portal in between) sent something else; run again, or download the file by hand, "
            f"check it with sha256sum and put it at {dest}."
        )
    os.replace(part, dest)
    fsync_dir(dest.parent)
    logger.info("Saved %s", dest)
    return dest


def ensure_imdb_archive(data_dir: Path) -> Path:
    """Return ``data_dir/aclImdb_v1.tar.gz``, downloading and verifying it if needed.

    Used when no ``data.path`` is configured, so the error adds that way out.
    """
    dest = Path(data_dir) / "aclImdb_v1.tar.gz"
    try:
        return download(IMDB_URL, dest, IMDB_SHA256)
    except DownloadError as exc:
        raise DownloadError(
            f"{exc} Or pass data.path=/path/to/aclImdb_v1.tar.gz to use a copy you already have."
        ) from exc
