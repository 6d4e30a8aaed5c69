import gzip
import logging
import tarfile

import numpy as np
import pytest

from rnnlab.data.datamodule import IMDBDataModule
from rnnlab.data.sources import load_reviews
from rnnlab.data.synthetic import write_dataset


@pytest.mark.parametrize("kind", ["archive", "folder", "csv"])
def test_every_reader_gives_the_same_reviews(tmp_path, kind):
    reference = load_reviews(write_dataset(tmp_path / "ref", 300, "archive"))
    reviews = load_reviews(write_dataset(tmp_path / kind, 300, kind))
    assert len(reviews) == 300
    pairs = sorted(zip(reviews.texts, reviews.labels.tolist(), strict=True))
    assert pairs == sorted(zip(reference.texts, reference.labels.tolist(), strict=True))
    if kind == "csv":
        assert reviews.official is None
    else:
        assert sorted(set(reviews.official)) == ["test", "train"]


def make_datamodule(path, tmp_path, **kwargs):
    dm = IMDBDataModule(path=str(path), cache_dir=str(tmp_path / "cache"), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_tutorial_split_is_stratified_80_20_and_test_is_val(tmp_path, synthetic_archive):
    dm = make_datamodule(synthetic_archive, tmp_path)
    assert dm.sizes == {"train": 960, "val": 240, "test": 240, "vocab": dm.sizes["vocab"]}
    assert dm._sets["val"].labels.mean() == pytest.approx(0.5, abs=0.01)
    assert dm._sets["val"] is not dm._sets["test"]
    assert [r.tolist() for r in dm._sets["val"].reviews] == [
        r.tolist() for r in dm._sets["test"].reviews
    ]
    assert dm.summary()["split"] == "tutorial"


def test_tutorial_split_warns_that_its_validation_is_its_test(tmp_path, synthetic_archive, caplog):
    make_datamodule(synthetic_archive, tmp_path)
    assert "validation and test are the same 240 reviews" in caplog.text
    caplog.clear()
    make_datamodule(synthetic_archive, tmp_path, split={"name": "holdout"})
    assert "validation and test are the same" not in caplog.text


def test_holdout_split_keeps_test_apart_from_a_stratified_validation(tmp_path, synthetic_archive):
    dm = make_datamodule(synthetic_archive, tmp_path, split={"name": "holdout"})
    assert dm.sizes == {"train": 864, "val": 96, "test": 240, "vocab": dm.sizes["vocab"]}
    tutorial = make_datamodule(synthetic_archive, tmp_path / "t")
    train, val, test = (set(dm.review_ids[name].tolist()) for name in ("train", "val", "test"))
    assert not train & val and not train & test and not val & test
    # the tutorial split's test reviews; validation is carved out of its training part
    assert test == set(tutorial.review_ids["test"].tolist())
    assert train | val == set(tutorial.review_ids["train"].tolist())
    assert dm._sets["val"].labels.mean() == pytest.approx(0.5, abs=0.02)
    assert dm.summary()["split"] == "holdout"


def test_official_split_keeps_the_datasets_test_half(tmp_path, synthetic_archive):
    dm = make_datamodule(
        synthetic_archive, tmp_path, split={"name": "official", "val_fraction": 0.1}
    )
    assert dm.sizes["test"] == 600
    assert dm.sizes["train"] + dm.sizes["val"] == 600
    assert dm.sizes["val"] == 60


def test_max_reviews_takes_a_stratified_subset(tmp_path, synthetic_archive):
    dm = make_datamodule(synthetic_archive, tmp_path, max_reviews=200)
    assert dm.sizes["train"] + dm.sizes["val"] == 200
    labels = np.concatenate([dm._sets["train"].labels, dm._sets["val"].labels])
    assert labels.mean() == 0.5


def test_train_reviews_trains_on_fewer_reviews_and_leaves_validation_and_test_alone(
    tmp_path, synthetic_archive
):
    full = make_datamodule(synthetic_archive, tmp_path, split={"name": "official"})
    few = make_datamodule(synthetic_archive, tmp_path, split={"name": "official"}, train_reviews=40)
    assert few.sizes["train"] == 40
    # stratified: the training part's share of positives, to within one review
    assert abs(few._sets["train"].labels.mean() - full._sets["train"].labels.mean()) <= 1 / 40
    assert set(few.review_ids["train"]) < set(full.review_ids["train"])
    for part in ("val", "test"):
        assert few.review_ids[part].tolist() == full.review_ids[part].tolist()


def test_min_epoch_reviews_passes_over_a_few_labels_several_times_per_epoch(
    tmp_path, synthetic_archive
):
    settings = {"split": {"name": "official"}, "train_reviews": 40, "batch_size": 8}
    one_pass = make_datamodule(synthetic_archive, tmp_path, **settings)
    assert len(one_pass.train_dataloader()) == 5
    dm = make_datamodule(synthetic_archive, tmp_path, min_epoch_reviews=100, **settings)
    loader = dm.train_dataloader()
    assert len(loader) == 13
    drawn = np.concatenate(list(loader.batch_sampler))
    assert len(drawn) == 100
    # two whole passes, then 20 of the 40 reviews: each drawn twice or three times
    assert sorted(np.bincount(drawn, minlength=40).tolist()) == [2] * 20 + [3] * 20
    assert len(dm.val_dataloader()) == len(one_pass.val_dataloader())


def test_vocabulary_is_built_on_the_training_split_only(tmp_path):
    path = write_dataset(tmp_path / "d", 400, "csv")
    text = path.read_bytes()
    rows = gzip.decompress(text).decode().splitlines()
    rows[1] = '"zzzonlyhere zzzonlyhere great great",positive'
    path.write_bytes(gzip.compress("\n".join(rows).encode()))
    dm = make_datamodule(path, tmp_path, vocab={"min_freq": 1})
    in_train = any(
        (r == dm.vocab.stoi.get("zzzonlyhere", -1)).any() for r in dm._sets["train"].reviews
    )
    assert ("zzzonlyhere" in dm.vocab.stoi) == in_train
    everything = make_datamodule(path, tmp_path, vocab={"min_freq": 1, "fit_on": "all"})
    assert "zzzonlyhere" in everything.vocab.stoi


def test_second_run_uses_the_cache_and_a_changed_setting_does_not(
    tmp_path, synthetic_archive, caplog
):
    caplog.set_level(logging.INFO, logger="rnnlab")
    make_datamodule(synthetic_archive, tmp_path)
    assert "Tokenized 1200 reviews" in caplog.text
    caplog.clear()
    make_datamodule(synthetic_archive, tmp_path)
    assert "tokenization skipped" in caplog.text
    caplog.clear()
    dm = make_datamodule(synthetic_archive, tmp_path, preprocess={"remove_stopwords": False})
    assert "Tokenized 1200 reviews" in caplog.text
    assert "the" in dm.vocab.stoi
    assert len(list((tmp_path / "cache").glob("corpus-*.npz"))) == 2


def test_cache_key_follows_file_content(tmp_path):
    path = write_dataset(tmp_path / "a", 200, "archive")
    first = make_datamodule(path, tmp_path)
    write_dataset(tmp_path / "a", 240, "archive", seed=5)  # same name, new content
    second = make_datamodule(path, tmp_path)
    assert first.sizes["train"] + first.sizes["val"] == 200
    assert second.sizes["train"] + second.sizes["val"] == 240


# -- the real files --------------------------------------------------------------------------------


def test_real_archive_reader(real_file):
    reviews = load_reviews(real_file("aclImdb_v1.tar.gz"))
    assert len(reviews) == 50_000
    assert reviews.labels.sum() == 25_000
    assert (reviews.official == "test").sum() == 25_000


def test_real_folder_reader(tmp_path, real_file):
    archive = real_file("aclImdb_v1.tar.gz")
    wanted, seen = 100, {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if len(parts) == 4 and parts[2] in ("pos", "neg") and member.isfile():
                key = (parts[1], parts[2])
                if seen.get(key, 0) < wanted // 4:
                    seen[key] = seen.get(key, 0) + 1
                    tar.extract(member, tmp_path, filter="data")
            if sum(seen.values()) == wanted:
                break
    reviews = load_reviews(tmp_path / "aclImdb")
    assert len(reviews) == wanted
    assert reviews.labels.sum() == wanted // 2


def test_real_csv_reader(real_file):
    reviews = load_reviews(real_file("IMDB Dataset.csv.gz"))
    assert len(reviews) == 50_000
    assert reviews.labels.sum() == 25_000
    assert reviews.official is None
