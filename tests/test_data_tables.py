"""CSV and TSV sources: tab-separated files read like CSV, and `data.csv.labels` set on the
command line in Hydra's plain form, validated before any data is read."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from compose import compose
from hydra.utils import instantiate

from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.data.sources import DataError, check_label_map, load_reviews
from rnnlab.data.synthetic import synthetic_reviews
from rnnlab.validate import problems

N = 60


def write_table(
    path: Path,
    delimiter: str,
    header: tuple[str, str] = ("review", "sentiment"),
    pos: str = "positive",
    neg: str = "negative",
) -> Path:
    """N synthetic reviews; every tenth one holds a comma, a tab-free quote and brackets."""
    texts, labels = synthetic_reviews(N, seed=2)
    texts = [f'{t}, "really" (yes) [{i}]' if i % 10 == 0 else t for i, t in enumerate(texts)]
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows([t, pos if y else neg] for t, y in zip(texts, labels, strict=True))
    return path


@pytest.mark.parametrize("name", ["reviews.tsv", "reviews.tsv.gz", "REVIEWS.TSV"])
def test_a_tsv_file_reads_like_the_same_csv(tmp_path: Path, name: str) -> None:
    as_csv = load_reviews(write_table(tmp_path / "reviews.csv", ","))
    as_tsv = load_reviews(write_table(tmp_path / name, "\t"))
    assert as_tsv.texts == as_csv.texts and as_tsv.texts[0].endswith('"really" (yes) [0]')
    np.testing.assert_array_equal(as_tsv.labels, as_csv.labels)
    assert as_tsv.official is None and len(as_tsv) == N


def test_tsv_takes_the_column_and_label_options(tmp_path: Path) -> None:
    path = write_table(tmp_path / "r.tsv", "\t", header=("text", "label"), pos="pos", neg="neg")
    reviews = load_reviews(path, "text", "label", {"pos": 1, "neg": 0})
    assert sorted(np.bincount(reviews.labels)) == [N // 2, N // 2]


def test_tsv_missing_column_names_the_file_its_columns_and_the_key(tmp_path: Path) -> None:
    path = write_table(tmp_path / "r.tsv", "\t", header=("text", "sentiment"))
    with pytest.raises(DataError) as info:
        load_reviews(path)
    message = str(info.value)
    assert f"{path} has no column 'review'" in message and "['text', 'sentiment']" in message
    assert "data.csv.text_column=" in message


def test_a_comma_file_named_tsv_says_what_was_expected(tmp_path: Path) -> None:
    """Read as tab-separated, a CSV has one column: the message names both missing columns' fix."""
    path = write_table(tmp_path / "r.tsv", ",")
    with pytest.raises(DataError) as info:
        load_reviews(path)
    assert "has no column 'review'" in str(info.value) and str(path) in str(info.value)


def test_unknown_extensions_name_tsv_among_the_formats(tmp_path: Path) -> None:
    path = tmp_path / "reviews.txt"
    path.write_text("review,sentiment\n")
    with pytest.raises(DataError, match=r"\.tsv / \.tsv\.gz"):
        load_reviews(path)


def test_tsv_through_train_config_caches_under_its_column_settings(tmp_path: Path) -> None:
    path = write_table(tmp_path / "r.tsv.gz", "\t", header=("text", "label"), pos="1", neg="0")
    overrides = [
        f"data.path={path}",
        "data.csv.text_column=text",
        "data.csv.label_column=label",
        "data.csv.labels={1: 1, 0: 0}",
    ]
    cfg = compose("train", overrides, tmp_path)
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert sum(datamodule.sizes[k] for k in ("train", "val", "test")) == N
    assert len(list((tmp_path / "cache").glob("corpus-*.npz"))) == 1
    other = IMDBDataModule(
        path=str(path),
        cache_dir=str(tmp_path / "cache"),
        csv={"text_column": "label", "label_column": "label", "labels": {1: 1, 0: 0}},
    )
    other.prepare_data()  # other columns: a cache entry of their own, not the first one's
    assert len(list((tmp_path / "cache").glob("corpus-*.npz"))) == 2


def test_plain_label_override_replaces_the_mapping(tmp_path: Path) -> None:
    """`data.csv.labels={pos: 1, neg: 0}` (the form Hydra's own hint shows) works without ++."""
    path = write_table(tmp_path / "r.csv", ",", pos="pos", neg="neg")
    plain = compose("train", [f"data.path={path}", "data.csv.labels={pos: 1, neg: 0}"], tmp_path)
    forced = compose("train", [f"data.path={path}", "++data.csv.labels={pos: 1, neg: 0}"], tmp_path)
    assert plain.data.csv.labels == forced.data.csv.labels == {"pos": 1, "neg": 0}
    assert problems(plain) == []
    datamodule = instantiate(plain.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert sum(datamodule.sizes[k] for k in ("train", "val", "test")) == N


def test_default_mapping_is_positive_negative(tmp_path: Path) -> None:
    cfg = compose("train", [], tmp_path)
    assert cfg.data.csv.labels is None and problems(cfg) == []
    datamodule = IMDBDataModule(
        path=str(write_table(tmp_path / "r.csv", ",")), csv={"labels": None}
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.csv["labels"] == {"positive": 1, "negative": 0}


BAD_MAPPINGS = {
    "one-class": ("{pos: 1}", "needs both classes"),
    "value-2": ("{pos: 2, neg: 0}", "other than 1 (positive) or 0 (negative)"),
    "value-true": ("{pos: true, neg: false}", "other than 1 (positive) or 0 (negative)"),
    "case-conflict": ("{Pos: 1, pos: 0, neg: 0}", "maps 'pos' (compared case-insensitively)"),
    "not-a-mapping": ("[pos, neg]", "is not a mapping of label values"),
    "empty": ("{}", "is not a mapping of label values"),
}


@pytest.mark.parametrize("case", list(BAD_MAPPINGS))
def test_a_bad_mapping_is_refused_before_data_is_read(tmp_path: Path, case: str) -> None:
    override, reason = BAD_MAPPINGS[case]
    cfg = compose(
        "train", [f"data.path={tmp_path / 'absent.csv'}", f"data.csv.labels={override}"], tmp_path
    )
    found = problems(cfg)
    assert len(found) == 1 and found[0].startswith("data.csv.labels=")
    assert "1 (positive) and 0 (negative)" in found[0]
    with pytest.raises(DataError) as info:  # the datamodule refuses it too (eval.py, library use)
        check_label_map(instantiate(cfg.data.csv, _convert_="all")["labels"])
    message = str(info.value)
    assert reason in message and "'data.csv.labels={pos: 1, neg: 0}'" in message
    assert "\n" not in message


def test_a_bad_mapping_is_refused_even_when_the_tokens_are_cached(tmp_path: Path) -> None:
    path = write_table(tmp_path / "r.csv", ",")
    IMDBDataModule(path=str(path), cache_dir=str(tmp_path / "cache")).prepare_data()
    bad = IMDBDataModule(
        path=str(path), cache_dir=str(tmp_path / "cache"), csv={"labels": {"positive": 1}}
    )
    with pytest.raises(DataError, match="needs both classes"):
        bad.prepare_data()


def test_the_label_hint_names_every_value_the_file_holds(tmp_path: Path) -> None:
    """The override replaces the mapping, so a file with mapped and unmapped values gets a
    hint that keeps the mapped ones: typed as printed, it loads the file."""
    path = write_table(tmp_path / "r.csv", ",", pos="positive", neg="neg")
    with pytest.raises(DataError) as info:
        load_reviews(path)
    assert "'data.csv.labels={neg: 0, positive: 1}'" in str(info.value)
    reviews = load_reviews(path, label_map={"neg": 0, "positive": 1})
    assert len(reviews) == N
