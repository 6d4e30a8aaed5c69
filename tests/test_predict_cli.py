"""predict.py as a user types it: a review with commas, quotes and brackets on the command line,
reviews on standard input, a CSV / TSV column in and a CSV of labels out, and a one-paragraph
error for every input it cannot use."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from compose import ROOT, compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from rnnlab.checkpoint import CheckpointError, load_checkpoint
from rnnlab.data.sources import DataError
from rnnlab.data.synthetic import write_dataset
from rnnlab.errors import ConfigError
from rnnlab.predict import quote_text_overrides, read_inputs
from rnnlab.predict import run as predict
from rnnlab.train import train

# what a review typed on the command line may hold: every character Hydra's syntax uses
NASTY = [
    "Dull, predictable and a total waste of time.",
    'It\'s "great" (really) [sic] {not} a=b, c: d ~e',
    "Cost me $5 and ${HOME} of my life, 100% wasted; meh\\",
    "back\\slash \\' \\\\\" end\\\\",
    "",
    "  leading and trailing spaces  ",
    "null",
    "1,2,3",
    "'quoted at the start only",
    "Loved it 😍, très bien, 好看",
    "Two lines,\nas $(cat review.txt) gives them\r\n",
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict_cli")
    data = write_dataset(root / "data", 300, "csv")
    overrides = [
        f"data.path={data}",
        "model=lstm",
        "model.embed_dim=16",
        "model.hidden_size=16",
        "data.batch_size=32",
        "logger=[]",
        "trainer.max_epochs=1",
        "test=false",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
    ]
    cfg = compose("train", overrides, root)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg)
    finally:
        torch.set_num_threads(before)
    return root / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def model(checkpoint: Path):
    return load_checkpoint(checkpoint)[0]


def predict_cfg(checkpoint: Path, **settings) -> OmegaConf:
    """predict.yaml as composed, with `settings` set."""
    cfg = compose("predict", [f"ckpt_path={checkpoint}"])
    with open_dict(cfg):
        for key, value in settings.items():
            cfg[key] = value
    return cfg


def parsed_text(argument: str) -> str:
    """What `python predict.py ckpt_path=x <argument>` gives the job as `text`."""
    return compose("predict", ["ckpt_path=x", *quote_text_overrides([argument])]).text


@pytest.mark.parametrize("review", NASTY)
def test_a_typed_review_reaches_the_job_verbatim(review: str) -> None:
    assert parsed_text(f"text={review}") == review


def test_any_mix_of_special_characters_reaches_the_job_verbatim() -> None:
    """Hydra's override parser, then OmegaConf's interpolation escapes: what compose does with
    an override (as above), without composing the whole config each time."""
    parser = OverridesParser.create()
    rng = random.Random(0)
    alphabet = ",'\"\\${}[]()=:~@%#!?*|/+- \tab"
    for _ in range(2000):
        review = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
        if len(review) >= 2 and review[0] == review[-1] and review[0] in "'\"":
            review = "x" + review  # one pair of surrounding quotes is dropped, as tested below
        (override,) = parser.parse_overrides(quote_text_overrides([f"text={review}"]))
        assert OmegaConf.create({"text": override.value()}).text == review


def test_a_review_quoted_the_earlier_way_loses_only_its_quotes() -> None:
    """The earlier advice, 'text="Dull, slow."', still gives the review without the quotes."""
    assert parsed_text('text="Dull, slow."') == "Dull, slow."
    assert parsed_text("text='It''s dull, slow.'") == "It''s dull, slow."
    assert parsed_text("++text='Dull, slow.'") == "Dull, slow."


def test_other_arguments_pass_unchanged() -> None:
    argv = ["ckpt_path=a,b.ckpt", "file=x.txt", "format=json", "-m", "batch_size=8", "texts=x"]
    assert quote_text_overrides(argv) == argv


def _run_predict(*args: str, stdin: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, str(ROOT / "predict.py"), *args],
        input=stdin,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_py_labels_a_review_typed_with_commas_quotes_and_brackets(
    checkpoint: Path, model, tmp_path: Path
) -> None:
    """Through the real entry point, as the shell passes it: no quotes left, commas and all."""
    review = NASTY[1]
    result = _run_predict(f"ckpt_path={checkpoint}", f"text={review}", "format=json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    expected = model.predict_texts([review]).item()
    assert row["positive_probability"] == pytest.approx(expected, abs=1e-6)


def test_predict_py_reads_standard_input_and_writes_a_csv(
    checkpoint: Path, model, tmp_path: Path
) -> None:
    reviews = ["Awful, boring and predictable.", "", "Brilliant (and beautiful) film!"]
    output = tmp_path / "out" / "labels.csv"
    result = _run_predict(
        f"ckpt_path={checkpoint}",
        "file=-",
        f"output={output}",
        stdin="\n".join(reviews) + "\n",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "" and f"Wrote 3 predictions (csv) to {output}" in result.stderr
    rows = list(csv.DictReader(output.open()))
    expected = model.predict_texts(reviews).tolist()
    assert [float(r["positive_probability"]) for r in rows] == pytest.approx(expected, abs=1e-6)
    assert [r["label"] for r in rows] == ["positive" if p >= 0.5 else "negative" for p in expected]


def _table(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


REVIEWS = [
    ["id", "review"],
    ["1", "Great, fun film."],
    ["2", ""],
    ["3", 'Awful "acting", (sadly).'],
]


@pytest.mark.parametrize(
    "name, delimiter, column",
    [
        ("r.csv", ",", None),
        ("r.csv.gz", ",", "review"),
        ("r.tsv", "\t", None),
        ("r.tsv.gz", "\t", "text"),
    ],
)
def test_a_column_of_a_table_is_labelled_row_by_row(
    checkpoint: Path, model, tmp_path: Path, capsys, name: str, delimiter: str, column: str | None
) -> None:
    rows = [r[:] for r in REVIEWS]
    if column == "text":
        rows[0][1] = "text"
    path = _table(tmp_path / name, rows, delimiter)
    output = tmp_path / "labels.csv"
    probabilities = predict(
        predict_cfg(checkpoint, file=str(path), column=column, output=str(output))
    )
    texts = [r[1] for r in rows[1:]]
    assert probabilities == pytest.approx(model.predict_texts(texts).tolist(), abs=1e-6)
    assert output.read_text().splitlines()[0] == "label,positive_probability"
    assert len(output.read_text().splitlines()) == 1 + len(texts)  # the empty review too
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "output, style, pattern",
    [
        (
            "labels.json",
            None,
            r'\{"label": "(positive|negative)", "positive_probability": [0-9.e-]+\}\n',
        ),
        (
            "labels.jsonl",
            None,
            r'\{"label": "(positive|negative)", "positive_probability": [0-9.e-]+\}\n',
        ),
        ("labels.txt", None, r"(positive|negative)\t[01]\.\d{4}\n"),
        ("labels.out", "csv", r"label,positive_probability\n(positive|negative),[0-9.e-]+\n"),
    ],
)
def test_the_output_format_follows_the_extension_unless_given(
    checkpoint: Path, tmp_path: Path, output: str, style: str | None, pattern: str
) -> None:
    cfg = predict_cfg(checkpoint, text="A wonderful, moving masterpiece.", format=style)
    cfg.output = str(tmp_path / output)
    predict(cfg)
    assert re.fullmatch(pattern, (tmp_path / output).read_text())


def test_format_csv_prints_a_csv_on_standard_output(checkpoint: Path, capsys) -> None:
    predict(predict_cfg(checkpoint, text="Great film.", format="csv"))
    header, row = capsys.readouterr().out.splitlines()
    assert header == "label,positive_probability" and row.split(",")[0] in ("positive", "negative")


def test_reading_standard_input_gives_one_review_a_line() -> None:
    assert read_inputs(None, "-", stdin=io.StringIO("a, b\n\nc (d)\n")) == ["a, b", "", "c (d)"]


def test_standard_input_that_is_not_utf8_is_read_with_replacements(monkeypatch) -> None:
    """As a file's odd bytes are: the review still gets a label, no UnicodeDecodeError."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9, great\nok\n")))
    assert read_inputs(None, "-") == ["caf\ufffd, great", "ok"]


def test_a_failed_run_leaves_an_earlier_output_whole(checkpoint: Path, tmp_path: Path) -> None:
    output = tmp_path / "labels.csv"
    output.write_text("label,positive_probability\npositive,0.9\n")
    fake = tmp_path / "fake.ckpt"
    fake.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        predict(predict_cfg(fake, text="Great.", output=str(output)))
    assert output.read_text() == "label,positive_probability\npositive,0.9\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.ckpt", "labels.csv"]


def _bad(tmp: Path) -> dict:
    csv_file = _table(tmp / "reviews.csv", [["id", "comment"], ["1", "A long, fine review."]])
    txt = tmp / "reviews.txt"
    txt.write_text("Great film\n")
    return {
        "column-missing": (
            {"file": str(csv_file), "column": "text"},
            DataError,
            [f"{csv_file} has no column 'text'", "['id', 'comment']", "column=comment"],
        ),
        "default-column-missing": (
            {"file": str(csv_file)},
            DataError,
            [f"{csv_file} has no column 'review'", "column= was not given", "column=comment"],
        ),
        "column-of-a-text-file": (
            {"file": str(txt), "column": "review"},
            ConfigError,
            [f"but {txt} is not one", "Drop column="],
        ),
        "column-with-text": ({"text": "Fine.", "column": "review"}, ConfigError, ["no file="]),
        "column-with-stdin": ({"file": "-", "column": "review"}, ConfigError, ["file=- reads"]),
        "file-missing": (
            {"file": str(tmp / "nope.txt")},
            DataError,
            [f"file={tmp / 'nope.txt'} does not exist", "file=- to read standard input"],
        ),
        "file-is-a-folder": ({"file": str(tmp)}, DataError, [f"file={tmp} is a folder"]),
        "neither-text-nor-file": ({}, ConfigError, ["needs exactly one of", "file=-"]),
        "both-text-and-file": ({"text": "x", "file": str(txt)}, ConfigError, ["exactly one"]),
        "output-is-the-input": (
            {"file": str(csv_file), "column": "comment", "output": str(csv_file)},
            ConfigError,
            [f"output={csv_file} is the input file", "Give another output path"],
        ),
        "output-is-a-folder": (
            {"text": "Fine.", "output": str(tmp)},
            ConfigError,
            [f"output={tmp} is a folder", "labels.csv"],
        ),
        "unknown-format": (
            {"text": "Fine.", "format": "xml"},
            ConfigError,
            ["format='xml' must be one of text, json, csv"],
        ),
    }


BAD_CASES = [
    "column-missing",
    "default-column-missing",
    "column-of-a-text-file",
    "column-with-text",
    "column-with-stdin",
    "file-missing",
    "file-is-a-folder",
    "neither-text-nor-file",
    "both-text-and-file",
    "output-is-the-input",
    "output-is-a-folder",
    "unknown-format",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_an_unusable_input_gets_a_one_paragraph_error(
    checkpoint: Path, tmp_path: Path, case: str
) -> None:
    cases = _bad(tmp_path)
    assert sorted(cases) == sorted(BAD_CASES)
    settings, error, needles = cases[case]
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(error) as info:
        predict(predict_cfg(checkpoint, **settings))
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
