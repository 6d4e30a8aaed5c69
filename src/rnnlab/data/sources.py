"""Readers for the forms IMDB comes in: the Stanford archive, its extracted folder, a CSV or TSV.

Every reader returns the same `Reviews` record, so everything downstream is source-agnostic.
"""

from __future__ import annotations

import logging
import re
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnlab.data.tarstream import tar_files
from rnnlab.errors import UserError

# aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt ; train/unsup is unlabeled and skipped.
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_FOLDER_FILE = re.compile(r"^(\d+)_(\d+)\.txt$")
# aclImdb/train/unsup/<id>_0.txt: the 50,000 unlabeled reviews (read_unlabeled)
_UNSUP_MEMBER = re.compile(r"(?:^|/)aclImdb/train/unsup/(\d+)_\d+\.txt$")
# review texts that stand for a missing value (compared stripped and lowercased)
_MISSING_TEXT = frozenset(["", "nan", "null", "none", "na", "n/a", "#n/a", "<na>"])
EMPTY_REVIEWS = ("skip", "error")

log = logging.getLogger(__name__)


DEFAULT_LABELS = {"positive": 1, "negative": 0}
# tables: comma-separated (CSV) or tab-separated (TSV), plain or compressed
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".csv.bz2", ".csv.xz")
TSV_SUFFIXES = (".tsv", ".tsv.gz", ".tsv.zip", ".tsv.bz2", ".tsv.xz")


class DataError(UserError, ValueError):
    """Bad input data: the message names the file, the row or key, and the fix."""


@dataclass
class Reviews:
    """Labeled reviews. `official` is "train"/"test" per review, or None when the source has none."""

    texts: list[str]
    labels: np.ndarray  # int64, 1 = positive
    official: np.ndarray | None  # dtype '<U5'
    source: str
    names: list[str] | None = None  # file or archive member of each review; None for a CSV

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, i: int) -> str:
        """Where review `i` came from, for error messages."""
        if self.names is not None:
            return self.names[i]
        return f"{self.source} data row {i + 1} (line {i + 2} of the file)"

    def subset(self, keep: np.ndarray) -> Reviews:
        return Reviews(
            texts=[self.texts[i] for i in np.flatnonzero(keep)],
            labels=self.labels[keep],
            official=None if self.official is None else self.official[keep],
            source=self.source,
            names=None if self.names is None else [self.names[i] for i in np.flatnonzero(keep)],
        )


def load_reviews(
    path: str | Path,
    text_column: str = "review",
    label_column: str = "sentiment",
    label_map: dict | None = None,
    empty_reviews: str = "skip",
) -> Reviews:
    """Read labeled reviews from a .tar.gz archive, an extracted aclImdb folder, or a CSV(.gz) or
    TSV(.gz) table (`text_column`, `label_column`; labels through `label_map`).

    Empty reviews (blank, whitespace-only or a missing-value marker such as NaN) carry no
    sentiment: `empty_reviews="skip"` leaves them out with a logged count, "error" refuses them.
    """
    if empty_reviews not in EMPTY_REVIEWS:
        raise DataError(
            f"data.empty_reviews={empty_reviews!r} is not one of {EMPTY_REVIEWS}: skip leaves "
            "empty reviews out (logged), error refuses data that holds any."
        )
    path = require_path(path)
    name = path.name.lower()
    if path.is_dir():
        reviews = read_folder(path)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        reviews = read_archive(path)
    elif is_table(path):
        reviews = read_csv(path, text_column, label_column, label_map or DEFAULT_LABELS)
    else:
        raise DataError(
            f"Cannot tell the format of {path}: expected a .tar.gz archive, an aclImdb folder, "
            "a .csv / .csv.gz file or a tab-separated .tsv / .tsv.gz file. Rename the file or "
            "point data.path at one of those."
        )
    reviews = _drop_empty(reviews, empty_reviews)
    _check_usable(reviews)
    return reviews


def require_path(path: str | Path) -> Path:
    """`path` as a Path, or a DataError saying what data.path should point at."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(
            f"Data path {path} does not exist. Point data.path (or the RNNLAB_DATA environment "
            "variable) at aclImdb_v1.tar.gz, an extracted aclImdb/ folder, or a CSV (or TSV) "
            "with review,sentiment columns; or leave both unset to download the Stanford archive."
        )
    return path


# what reading a truncated or corrupt archive raises
UNREADABLE_ARCHIVE = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError)


def unreadable_archive(path: Path, err: Exception) -> DataError:
    return DataError(
        f"{path} is not a readable tar archive ({type(err).__name__}: {err}). The file is "
        "probably truncated or corrupt: delete it and download it again, or point data.path "
        "at an extracted aclImdb/ folder."
    )


def read_archive(path: Path) -> Reviews:
    """Stream the Stanford archive without extracting its 100,000 files."""
    rows = []
    try:
        for name, raw in tar_files(path, lambda name: _MEMBER.search(name) is not None):
            split, polarity, review_id, _rating = _MEMBER.search(name).groups()
            text = _decode(raw, f"{path}::{name}")
            rows.append((split, polarity, int(review_id), text, f"{path}::{name}"))
    except DataError:
        raise
    except UNREADABLE_ARCHIVE as err:
        raise unreadable_archive(path, err) from err
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
                    rows.append((split, polarity, int(match.group(1)), text, str(file)))
    if not rows:
        if (root / "pos").is_dir() or (root / "neg").is_dir():
            raise DataError(
                f"{path} looks like one split of the aclImdb folder (it holds pos/ and neg/): "
                f"point data.path at the aclImdb/ folder above it ({root.parent})."
            )
        raise DataError(
            f"{path} is a folder but holds no reviews in the aclImdb layout "
            "(train/pos, train/neg, test/pos, test/neg with <id>_<rating>.txt files). "
            "Point data.path at the extracted aclImdb/ folder, the archive, or a CSV file."
        )
    return _from_rows(rows, str(path))


def read_unlabeled(path: str | Path) -> Reviews:
    """The unlabeled reviews (train/unsup) of the Stanford archive or its extracted folder, in
    file-number order; labels are all 0 and mean nothing. A CSV or TSV source has none: an
    empty record."""
    path = require_path(path)
    rows: list[tuple[int, str, str]] = []
    if path.is_dir():
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        folder = root / "train" / "unsup"
        for file in folder.iterdir() if folder.is_dir() else []:
            match = _FOLDER_FILE.match(file.name)
            if match:
                rows.append((int(match.group(1)), _decode(file.read_bytes(), str(file)), str(file)))
    elif not is_table(path):
        try:
            for name, raw in tar_files(path, lambda n: _UNSUP_MEMBER.search(n) is not None):
                number = int(_UNSUP_MEMBER.search(name).group(1))
                rows.append((number, _decode(raw, f"{path}::{name}"), f"{path}::{name}"))
        except DataError:
            raise
        except UNREADABLE_ARCHIVE as err:
            raise unreadable_archive(path, err) from err
    rows.sort()
    rows = [r for r in rows if not _is_empty(r[1])]
    return Reviews(
        texts=[r[1] for r in rows],
        labels=np.zeros(len(rows), dtype=np.int64),
        official=None,
        source=str(path),
        names=[r[2] for r in rows],
    )


def is_table(path: str | Path) -> bool:
    """Whether `path` names a CSV or TSV file (plain or compressed), by its name."""
    return Path(path).name.lower().endswith(CSV_SUFFIXES + TSV_SUFFIXES)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or TSV file (tab-separated when its name says .tsv) as strings, header row first.

    Every cell is kept as written: no value is turned into NaN, so an empty cell reads as "".
    """
    tsv = Path(path).name.lower().endswith(TSV_SUFFIXES)
    kind, header = ("TSV", "review<TAB>sentiment") if tsv else ("CSV", "review,sentiment")
    try:
        frame = pd.read_csv(
            path, sep="\t" if tsv else ",", dtype=str, keep_default_na=False, encoding="utf-8"
        )
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}). Re-save it as UTF-8, "
            f"e.g. `iconv -f latin1 -t utf-8 in.{kind.lower()} > out.{kind.lower()}`."
        ) from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, EOFError, zlib.error) as err:
        raise DataError(
            f"{path} could not be read as {kind} ({type(err).__name__}: {err}). If it is "
            "compressed, it may be truncated or corrupt: copy or download it again. Otherwise "
            f"check that it is a {'tab' if tsv else 'comma'}-separated file with a header row "
            f"({header})."
        ) from err
    return frame


def check_label_map(label_map: object) -> dict[str, int]:
    """`data.csv.labels` as {normalized value: 0 or 1}, or a DataError saying what is wrong.

    Values are compared stripped and lowercased, so two keys that differ only in case or
    surrounding spaces must agree; the mapping needs both classes, 1 (positive) and 0 (negative).
    """
    if not isinstance(label_map, Mapping) or not label_map:
        problem = "is not a mapping of label values"
    elif any(isinstance(v, bool) or v not in (0, 1) for v in label_map.values()):
        problem = "maps a label to something other than 1 (positive) or 0 (negative)"
    elif set(label_map.values()) != {0, 1}:
        problem = "needs both classes: at least one value mapped to 1 and one mapped to 0"
    else:
        mapping: dict[str, int] = {}
        for key, value in label_map.items():
            norm = str(key).strip().lower()
            if mapping.setdefault(norm, int(value)) != int(value):
                problem = f"maps {norm!r} (compared case-insensitively) to both 0 and 1"
                break
        else:
            return mapping
    shown = dict(label_map) if isinstance(label_map, Mapping) else label_map
    raise DataError(
        f"data.csv.labels={shown!r} {problem}. Map each value of the file's label column to 1 "
        "(positive) or 0 (negative) on the command line, e.g. 'data.csv.labels={pos: 1, neg: 0}'."
    )


def read_csv(path: Path, text_column: str, label_column: str, label_map: Mapping) -> Reviews:
    """Read a review,sentiment CSV (the tutorial's Kaggle format) or TSV; labels go through
    `label_map`."""
    mapping = check_label_map(label_map)
    frame = read_table(path)
    for key, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in frame.columns:
            raise DataError(
                f"{path} has no column {column!r} (its columns: {list(frame.columns)}). "
                f"Set data.csv.{key}=<name> to the column that holds the "
                f"{'review text' if key == 'text_column' else 'label'}."
            )
    raw_labels = frame[label_column].astype(str).str.strip().str.lower()
    labels = raw_labels.map(mapping)
    unknown = labels.isna()
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        values = sorted(set(frame.loc[unknown, label_column]))[:5]
        raise DataError(
            f"{path} data row {row + 1} (line {row + 2} of the file) has label "
            f"{frame[label_column].iloc[row]!r}, which data.csv.labels does not map "
            f"(mapped: {sorted(mapping)}; unmapped values seen: {values}). Map them to 1 "
            "(positive) and 0 (negative) on the command line, e.g. "
            f"{_mapping_hint(sorted(set(frame[label_column])), mapping)}."
        )
    return Reviews(
        texts=frame[text_column].tolist(),
        labels=labels.to_numpy(dtype=np.int64),
        official=None,
        source=str(path),
    )


_POSITIVE = {"1", "pos", "positive", "true", "yes", "good"}
_NEGATIVE = {"0", "neg", "negative", "false", "no", "bad"}


def _mapping_hint(values: list[str], mapping: dict[str, int]) -> str:
    """A `data.csv.labels={...}` override for every label value of the file, when each is
    either mapped already or of evident polarity (pos/neg, 1/0, true/false, ...). The override
    replaces the whole mapping, so it names every value the file holds."""
    keys = sorted({str(v).strip() for v in values})
    if (
        keys
        and len(keys) <= 10
        and all(k.lower() in mapping or k.lower() in _POSITIVE | _NEGATIVE for k in keys)
        and all(re.fullmatch(r"\w+", k) for k in keys)  # typed unquoted as Hydra dict keys
    ):
        polarity = {k: mapping.get(k.lower(), int(k.lower() in _POSITIVE)) for k in keys}
        if set(polarity.values()) == {0, 1}:
            pairs = ", ".join(f"{k}: {v}" for k, v in polarity.items())
            return f"'data.csv.labels={{{pairs}}}'"
    return "'data.csv.labels={pos: 1, neg: 0}' (values are compared case-insensitively)"


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
        names=[r[4] for r in rows],
    )


def _is_empty(text: object) -> bool:
    return not isinstance(text, str) or text.strip().lower() in _MISSING_TEXT


def _drop_empty(reviews: Reviews, policy: str) -> Reviews:
    """Apply data.empty_reviews: leave out (and log) or refuse blank / whitespace / NaN reviews."""
    empty = np.array([_is_empty(t) for t in reviews.texts], dtype=bool)
    if not empty.any():
        return reviews
    rows = np.flatnonzero(empty)
    places = "; ".join(reviews.where(int(i)) for i in rows[:3])
    places += f"; and {len(rows) - 3} more" if len(rows) > 3 else ""
    if policy == "error":
        raise DataError(
            f"{reviews.source} holds {len(rows)} empty review(s) (blank, whitespace-only or a "
            f"missing-value marker such as NaN): {places}. Fill in or delete them, or set "
            "data.empty_reviews=skip to leave them out."
        )
    log.warning(
        "Skipped %d empty review(s) (blank, whitespace-only or NaN) of %d in %s: %s. "
        "Set data.empty_reviews=error to refuse such data instead.",
        len(rows),
        len(reviews),
        reviews.source,
        places,
    )
    return reviews.subset(~empty)


def _check_usable(reviews: Reviews) -> None:
    if len(reviews) == 0:
        raise DataError(
            f"{reviews.source} holds no usable reviews (every review is empty). Check the "
            "text column (data.csv.text_column) and the file's contents."
        )
    classes = np.unique(reviews.labels)
    if len(classes) < 2:
        name = "positive" if classes.size and classes[0] == 1 else "negative"
        raise DataError(
            f"{reviews.source} holds only {name} reviews ({len(reviews)} of them): a sentiment "
            "classifier needs both classes. For a CSV check the label column and data.csv.labels; "
            "an aclImdb folder or archive needs reviews in both pos/ and neg/."
        )
