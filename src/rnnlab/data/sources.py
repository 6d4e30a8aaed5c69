"""Readers for the three forms IMDB comes in: the Stanford archive, its extracted folder, a CSV.

Every reader returns the same `Reviews` record, so everything downstream is source-agnostic.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab.data.tarstream import tar_files

# aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt ; train/unsup is unlabeled and skipped.
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_FOLDER_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")


class DataError(ValueError):
    """Bad input data: the message names the file, the row or key, and the fix."""


@dataclass
class Reviews:
    """Labeled reviews. `official` is "train"/"test" per review, or None when the source has none."""

    texts: list[str]
    labels: np.ndarray  # int64, 1 = positive
    official: np.ndarray | None  # dtype '<U5'
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def load_reviews(
    path: str | Path,
    text_column: str = "review",
    label_column: str = "sentiment",
    label_map: dict | None = None,
) -> Reviews:
    """Read labeled reviews from a .tar.gz archive, an extracted aclImdb folder, or a CSV(.gz)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"Data path {path} does not exist. Point data.path (or the RNNLAB_DATA environment "
            "variable) at aclImdb_v1.tar.gz, an extracted aclImdb/ folder, or a CSV with "
            "review,sentiment columns; or leave both unset to download the Stanford archive."
        )
    name = path.name.lower()
    if path.is_dir():
        reviews = read_folder(path)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        reviews = read_archive(path)
    elif name.endswith((".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".csv.xz")):
        reviews = read_csv(path, text_column, label_column, label_map or {})
    else:
        raise DataError(
            f"Cannot tell the format of {path}: expected a .tar.gz archive, an aclImdb folder, "
            "or a .csv / .csv.gz file. Rename the file or point data.path at one of those."
        )
    _check_usable(reviews)
    return reviews


def read_archive(path: Path) -> Reviews:
    """Stream the Stanford archive without extracting its 100,000 files."""
    rows = []
    try:
        for name, raw in tar_files(path, lambda name: _MEMBER.search(name) is not None):
            split, polarity, review_id, _rating = _MEMBER.search(name).groups()
            text = _decode(raw, f"{path}::{name}")
            rows.append((split, polarity, int(review_id), text))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"{path} is not a readable tar archive ({type(err).__name__}: {err}). The file is "
            "probably truncated or corrupt: delete it and download it again, or point data.path "
            "at an extracted aclImdb/ folder."
        ) from err
    if not rows:
        raise DataError(
            f"{path} holds no aclImdb/{{train,test}}/{{pos,neg}}/<id>_<rating>.txt reviews. "
            "Point data.path at the Stanford aclImdb_v1.tar.gz archive."
        )
    return _from_rows(rows, str(path))


def read_folder(path: Path) -> Reviews:
    """Read an extracted archive: `path` is the aclImdb folder or the folder that holds it."""
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    rows = []
    for split in ("train", "test"):
        for polarity in ("pos", "neg"):
            folder = root / split / polarity
            if not folder.is_dir():
                continue
            for file in folder.iterdir():
                match = _FOLDER_FILE.match(file.name)
                if match:
                    text = _decode(file.read_bytes(), str(file))
                    rows.append((split, polarity, int(match.group(1)), text))
    if not rows:
        raise DataError(
            f"{path} is a folder but holds no reviews in the aclImdb layout "
            "(train/pos, train/neg, test/pos, test/neg with <id>_<rating>.txt files). "
            "Point data.path at the extracted aclImdb/ folder, the archive, or a CSV file."
        )
    return _from_rows(rows, str(path))


def read_csv(path: Path, text_column: str, label_column: str, label_map: dict) -> Reviews:
    """Read a review,sentiment CSV (the tip's Kaggle format); labels go through `label_map`."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}). Re-save it as UTF-8, "
            "e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`."
        ) from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError) as err:
        raise DataError(f"{path} could not be read as CSV: {err}. Check the file.") from err
    for key, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in frame.columns:
            raise DataError(
                f"{path} has no column {column!r} (its columns: {list(frame.columns)}). "
                f"Set data.csv.{key}=<name> to the column that holds the "
                f"{'review text' if key == 'text_column' else 'label'}."
            )
    mapping = {str(k).strip().lower(): int(v) for k, v in label_map.items()}
    raw_labels = frame[label_column].astype(str).str.strip().str.lower()
    labels = raw_labels.map(mapping)
    unknown = labels.isna()
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        values = sorted(set(frame.loc[unknown, label_column]))[:5]
        raise DataError(
            f"{path} row {row + 2} (line {row + 2}, counting the header) has label "
            f"{frame[label_column].iloc[row]!r}, which data.csv.labels does not map "
            f"(mapped: {sorted(mapping)}; unmapped values seen: {values}). Add them, e.g. "
            "data.csv.labels='{pos: 1, neg: 0}'."
        )
    return Reviews(
        texts=frame[text_column].tolist(),
        labels=labels.to_numpy(dtype=np.int64),
        official=None,
        source=str(path),
    )


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{where} is not UTF-8 text ({err.reason} at byte {err.start}). Re-save it as UTF-8."
        ) from err


def _from_rows(rows: list, source: str) -> Reviews:
    rows.sort(key=lambda r: (r[0] != "train", r[1] != "pos", r[2]))  # deterministic order
    return Reviews(
        texts=[r[3] for r in rows],
        labels=np.array([r[1] == "pos" for r in rows], dtype=np.int64),
        official=np.array([r[0] for r in rows]),
        source=source,
    )


def _check_usable(reviews: Reviews) -> None:
    classes = np.unique(reviews.labels)
    if len(classes) < 2:
        name = "positive" if classes.size and classes[0] == 1 else "negative"
        raise DataError(
            f"{reviews.source} holds only {name} reviews ({len(reviews)} of them): a sentiment "
            "classifier needs both classes. Check the label column and data.csv.labels."
        )
