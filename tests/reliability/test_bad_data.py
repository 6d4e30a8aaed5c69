"""Bad data a user may point rnnlab at: each is refused with one message naming the file, the row
or key, and the fix, or handled in a documented, logged way. Inputs go through IMDBDataModule,
the way `python train.py data.path=...` reads them."""

from __future__ import annotations

import csv
import gzip
import logging
import re
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from compose import compose
from hydra.utils import instantiate

from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.data.sources import DataError
from rnnlab.data.synthetic import synthetic_reviews, write_dataset

N = 40  # reviews per synthetic file: enough to split, small enough to be instant


def _csv(tmp: Path, rows: list, header=("review", "sentiment"), name="reviews.csv", enc="utf-8"):
    path = tmp / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding=enc) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _rows(n: int = N, pos: str = "positive", neg: str = "negative") -> list[list[str]]:
    texts, labels = synthetic_reviews(n, seed=1)
    return [[t, pos if y else neg] for t, y in zip(texts, labels, strict=True)]


def _tar_folder(folder: Path, name: str = "aclImdb_v1.tar.gz") -> Path:
    """Pack a folder the way the Stanford archive is packed (its name as the top folder)."""
    path = folder.parent.parent / name
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return path


def _archive_with(tmp: Path, member: str, data: bytes) -> Path:
    folder = write_dataset(tmp / "src", N, "folder")
    (folder / member).write_bytes(data)
    return _tar_folder(folder)


def _with_empty_rows(tmp: Path) -> Path:
    rows = _rows()
    rows[3][0], rows[10][0], rows[20][0] = "", "   \n\t ", "NaN"
    return _csv(tmp, rows)


def _empty_member(tmp: Path) -> Path:
    return _archive_with(tmp, "train/pos/999_9.txt", b"  \n")


def _folder_without(tmp: Path, *drop: str) -> Path:
    folder = write_dataset(tmp, N, "folder")
    for part in drop:
        shutil.rmtree(folder / part)
    return folder


def _truncated(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _latin1_member(tmp: Path) -> Path:
    return _archive_with(tmp, "train/neg/777_1.txt", "Un film très ennuyeux.".encode("latin-1"))


def _latin1_file(tmp: Path) -> Path:
    folder = write_dataset(tmp, N, "folder")
    (folder / "train" / "neg" / "777_1.txt").write_bytes("Très ennuyeux.".encode("latin-1"))
    return folder


def _not_imdb_tar(tmp: Path) -> Path:
    (tmp / "src" / "photos").mkdir(parents=True)
    (tmp / "src" / "photos" / "notes.txt").write_text("hello")
    return _tar_folder(tmp / "src" / "photos", "other.tar.gz")


# id -> (write the bad input under tmp, IMDBDataModule settings, what the message must say).
# "{path}" stands for the path the writer returned.
REFUSED: dict[str, tuple[Callable[[Path], Path], dict, list[str]]] = {
    "missing-path": (
        lambda tmp: tmp / "aclImdb_v1.tar.gz",
        {},
        ["{path} does not exist", "Point data.path"],
    ),
    "empty-folder": (
        lambda tmp: (tmp / "reviews").mkdir() or tmp / "reviews",
        {},
        ["{path} is a folder but holds no reviews", "train/pos", "Point data.path"],
    ),
    "split-folder-instead-of-aclImdb": (
        lambda tmp: write_dataset(tmp, N, "folder") / "train",
        {},
        ["{path} looks like one split", "point data.path at the aclImdb/ folder"],
    ),
    "unknown-file-format": (
        lambda tmp: (tmp / "reviews.json").write_text("[]") and tmp / "reviews.json",
        {},
        ["Cannot tell the format of {path}", ".csv"],
    ),
    "tar-without-imdb-layout": (
        _not_imdb_tar,
        {},
        ["{path} holds no aclImdb/", "Point data.path"],
    ),
    "csv-missing-review-column": (
        lambda tmp: _csv(tmp, _rows(), header=("text", "sentiment")),
        {},
        ["{path} has no column 'review'", "['text', 'sentiment']", "data.csv.text_column="],
    ),
    "csv-missing-label-column": (
        lambda tmp: _csv(tmp, _rows(), header=("review", "label")),
        {},
        ["{path} has no column 'sentiment'", "data.csv.label_column="],
    ),
    "labels-pos-neg": (
        lambda tmp: _csv(tmp, _rows(pos="pos", neg="neg")),
        {},
        ["{path} data row 1 (line 2 of the file)", "'data.csv.labels={neg: 0, pos: 1}'"],
    ),
    "labels-1-0": (
        lambda tmp: _csv(tmp, _rows(pos="1", neg="0")),
        {},
        ["{path} data row 1", "'data.csv.labels={0: 0, 1: 1}'"],
    ),
    "labels-unknown-values": (
        lambda tmp: _csv(tmp, _rows(pos="thumbs up", neg="thumbs down")),
        {},
        ["{path} data row 1", "'thumbs down'", "'data.csv.labels="],
    ),
    "label-blank-in-one-row": (
        lambda tmp: _csv(tmp, [*_rows()[:2], ["A fine film.", ""], *_rows()[2:]]),
        {},
        ["{path} data row 3 (line 4 of the file) has label ''"],
    ),
    "empty-reviews-refused": (
        _with_empty_rows,
        {"empty_reviews": "error"},
        ["{path} holds 3 empty review(s)", "data row 4 (line 5", "data.empty_reviews=skip"],
    ),
    "empty-archive-member-refused": (
        _empty_member,
        {"empty_reviews": "error"},
        ["{path}::aclImdb/train/pos/999_9.txt", "data.empty_reviews=skip"],
    ),
    "only-empty-reviews": (
        lambda tmp: _csv(tmp, [["", "positive"], [" ", "negative"], ["nan", "positive"]]),
        {},
        ["{path} holds no usable reviews", "data.csv.text_column"],
    ),
    "csv-not-utf8": (
        lambda tmp: _csv(tmp, [*_rows(), ["Très ennuyeux, à éviter.", "negative"]], enc="latin-1"),
        {},
        ["{path} is not UTF-8", "iconv -f latin1 -t utf-8"],
    ),
    "archive-member-not-utf8": (
        _latin1_member,
        {},
        ["{path}::aclImdb/train/neg/777_1.txt is not UTF-8", "Re-save it as UTF-8"],
    ),
    "folder-file-not-utf8": (
        _latin1_file,
        {},
        ["777_1.txt is not UTF-8", "Re-save it as UTF-8"],
    ),
    "truncated-tar-gz": (
        lambda tmp: _truncated(write_dataset(tmp, N, "archive")),
        {},
        ["{path} is not a readable tar archive", "truncated or corrupt", "download it again"],
    ),
    "random-bytes-as-tar-gz": (
        lambda tmp: (
            (tmp / "a.tar.gz").write_bytes(np.random.default_rng(0).bytes(5000))
            and tmp / "a.tar.gz"
        ),
        {},
        ["{path} is not a readable tar archive", "truncated or corrupt"],
    ),
    "truncated-csv-gz": (
        lambda tmp: _truncated(write_dataset(tmp, 400, "csv")),
        {},
        ["{path} could not be read as CSV", "truncated or corrupt"],
    ),
    "one-class-csv": (
        lambda tmp: _csv(tmp, _rows(neg="positive")),
        {},
        ["{path} holds only positive reviews", "needs both classes"],
    ),
    "one-class-folder": (
        lambda tmp: _folder_without(tmp, "train/neg", "test/neg"),
        {},
        ["{path} holds only positive reviews", "both pos/ and neg/"],
    ),
    "max-reviews-larger-than-data": (
        lambda tmp: _csv(tmp, _rows()),
        {"max_reviews": 10_000},
        ["data.max_reviews=10000 is larger than the 40 labeled reviews in {path}", "smaller"],
    ),
    "max-reviews-too-few-to-split": (
        lambda tmp: _csv(tmp, _rows()),
        {"max_reviews": 3},
        ["Cannot split the reviews of {path}", "data.max_reviews"],
    ),
    "official-split-of-a-csv": (
        lambda tmp: _csv(tmp, _rows()),
        {"split": {"name": "official"}},
        ["split=official needs the dataset's own train/test split", "split=tutorial"],
    ),
    "official-split-without-test": (
        lambda tmp: _folder_without(tmp, "test"),
        {"split": {"name": "official"}},
        ["split=official needs reviews under both train/ and test/", "split=tutorial"],
    ),
}


def _load(path: Path, tmp: Path, **settings) -> IMDBDataModule:
    datamodule = IMDBDataModule(path=str(path), cache_dir=str(tmp / "cache"), **settings)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


@pytest.mark.parametrize("case", [pytest.param(k, id=k) for k in REFUSED])
def test_bad_data_is_refused_with_a_clear_message(tmp_path: Path, case: str) -> None:
    write, settings, needles = REFUSED[case]
    path = write(tmp_path)
    with pytest.raises(DataError) as info:
        _load(path, tmp_path, **settings)
    message = str(info.value)
    assert "\n" not in message  # one paragraph
    for needle in needles:
        assert needle.replace("{path}", str(path)) in message, (needle, message)


def _hinted_override(message: str) -> str:
    return re.search(r"'(data\.csv\.labels=\{[^}]*\})'", message).group(1)


@pytest.mark.parametrize(
    "pos, neg", [pytest.param("pos", "neg", id="pos-neg"), pytest.param("1", "0", id="1-0")]
)
def test_label_hint_in_the_message_works_as_given(tmp_path: Path, pos: str, neg: str) -> None:
    """The fix a refusal suggests, typed on the command line as printed, loads the file."""
    path = _csv(tmp_path, _rows(pos=pos, neg=neg))
    with pytest.raises(DataError) as info:
        _load(path, tmp_path)
    overrides = [f"data.path={path}", _hinted_override(str(info.value))]
    cfg = compose("train", overrides, tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    total = sum(datamodule.sizes[k] for k in ("train", "val", "test"))
    assert total == N


def test_label_values_match_case_and_space_insensitively(tmp_path: Path) -> None:
    path = _csv(tmp_path, _rows(pos=" Positive", neg="NEGATIVE "))
    datamodule = _load(path, tmp_path)
    labels = np.concatenate([datamodule._sets[k].labels for k in ("train", "val")])
    assert sorted(np.bincount(labels)) == [N // 2, N // 2]


@pytest.mark.parametrize(
    "write, empty, kept",
    [
        pytest.param(_with_empty_rows, 3, N - 3, id="csv"),  # 3 of its N rows are empty
        pytest.param(_empty_member, 1, N, id="archive"),  # N reviews and one empty file
    ],
)
def test_empty_reviews_are_skipped_and_counted_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, write, empty: int, kept: int
) -> None:
    path = write(tmp_path)
    with caplog.at_level(logging.WARNING, logger="rnnlab.data.sources"):
        datamodule = _load(path, tmp_path)
    assert datamodule.sizes["train"] + datamodule.sizes["val"] == kept
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert f"Skipped {empty} empty review(s)" in warning and str(path) in warning
    assert "data.empty_reviews=error" in warning


def test_max_reviews_equal_to_the_data_is_accepted(tmp_path: Path) -> None:
    datamodule = _load(_csv(tmp_path, _rows()), tmp_path, max_reviews=N)
    assert datamodule.sizes["train"] + datamodule.sizes["val"] == N
