"""The regular files of a (gzipped) tar archive, read in one pass.

Python's `tarfile` builds a `TarInfo` object per member and reads each file through a seek on
the gzip stream: for the IMDB archive's 100,000 small files that costs several seconds. Here the
archive is decompressed in one call and its 512-byte headers are parsed directly (ustar, GNU
long names and pax paths); anything unusual (sparse files, base-256 sizes, bzip2/xz) goes
through `tarfile` instead, so the result never depends on which path read it.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

_BLOCK = 512
_FILE_TYPES = (b"0", b"\0", b"7")  # regular file, old-style regular file, contiguous file


class _Unusual(Exception):
    """A header this reader leaves to `tarfile`."""


def tar_files(
    path: str | Path, select: Callable[[str], bool] = lambda name: True
) -> Iterator[tuple[str, bytes]]:
    """(member name, contents) of each regular file whose name `select` accepts, in order.

    Raises `tarfile.TarError`, `zlib.error`, `EOFError` or `OSError` on a damaged archive.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data)
    elif data[:3] in (b"BZh", b"\xfd7z"):
        yield from _with_tarfile(path, select)
        return
    try:
        members = list(_parse(data))  # every header checked before anything is returned
    except _Unusual:
        yield from _with_tarfile(path, select)
        return
    for name, start, size in members:
        if select(name):
            yield name, data[start : start + size]


def _gunzip(data: bytes) -> bytes:
    """All gzip members, like `gzip.decompress`, failing on a truncated stream."""
    parts = []
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        parts.append(inflater.decompress(data))
        if not inflater.eof:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
        data = inflater.unused_data.lstrip(b"\0")
    return b"".join(parts)


def _with_tarfile(path: str | Path, select: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile() and select(member.name):
                yield member.name, tar.extractfile(member).read()


def _number(field: bytes) -> int:
    if field[:1] in (b"\x80", b"\xff"):
        raise _Unusual("base-256 number")
    field = field.split(b"\0", 1)[0].strip()
    return int(field, 8) if field else 0


def _parse(data: bytes) -> Iterator[tuple[str, int, int]]:
    """(name, offset, size) of each regular file."""
    pos, end = 0, len(data)
    long_name: bytes | None = None
    while pos + _BLOCK <= end:
        header = data[pos : pos + _BLOCK]
        if header[0] == 0 and not header.strip(b"\0"):
            return  # end-of-archive marker
        stored = _number(header[148:156])
        if stored != sum(header[:148]) + 8 * 32 + sum(header[156:]):
            raise _Unusual("checksum")  # tarfile also accepts signed sums, or reports damage
        size = _number(header[124:136])
        kind = header[156:157]
        start = pos + _BLOCK
        pos = start + -(-size // _BLOCK) * _BLOCK
        if pos > end:
            raise tarfile.ReadError("unexpected end of data")
        if kind == b"L":  # GNU long name of the next member
            long_name = data[start : start + size].split(b"\0", 1)[0]
            continue
        if kind == b"x":  # pax extended header of the next member
            long_name = _pax_path(data[start : start + size]) or long_name
            continue
        if kind in (b"g", b"K", b"5", b"1", b"2", b"3", b"4", b"6"):
            long_name = None if kind != b"g" else long_name
            continue  # global pax header, long link name, directories, links, devices
        if kind not in _FILE_TYPES:
            raise _Unusual(f"member type {kind!r}")
        name = header[:100].split(b"\0", 1)[0]
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        if long_name is not None:
            name, long_name = long_name, None
        yield name.decode("utf-8", "surrogateescape"), start, size
    if pos != end:
        raise tarfile.ReadError("truncated header")


def _pax_path(body: bytes) -> bytes | None:
    path = None
    pos = 0
    while pos < len(body):
        length, _, rest = body[pos:].partition(b" ")
        if not length.isdigit():
            break
        record = body[pos + len(length) + 1 : pos + int(length) - 1]
        key, _, value = record.partition(b"=")
        if key == b"path":
            path = value
        pos += int(length)
    return path
