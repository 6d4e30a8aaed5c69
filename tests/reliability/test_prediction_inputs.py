"""Odd texts get a valid prediction; a file that is not a checkpoint gets a clear error."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from compose import compose
from omegaconf import OmegaConf
from reliability_support import QUICK

from rnnlab.checkpoint import CheckpointError, load_checkpoint
from rnnlab.predict import run as predict
from rnnlab.train import train

TEXTS = {
    "empty": "",
    "whitespace-only": " \t  ",
    "100000-characters": ("A wonderful film, truly moving. " * 3200)[:100_000],
    "one-100000-character-word": "a" * 100_000,
    "emoji-only": "😀🎬👍🔥💯",
    "emoji-in-words": "Loved it 😍😍 best film of the year 🎬",
    "french": "Un film magnifique, émouvant et très bien joué.",
    "chinese": "这部电影非常好看，演员的表演很精彩。",
    "russian": "Ужасный фильм, скучный и предсказуемый.",
    "arabic": "فيلم رائع جدا",
    "html-only": '<br /><br /><p></p><div class="review"><img src="x.png"/></div>',
    "control-characters": "\x00\x01\x7f\u200b\ufeff",
}


@pytest.fixture(scope="module")
def checkpoint(tiny_archive: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = compose(
        "train",
        [*QUICK, f"data.path={tiny_archive}", "trainer.max_epochs=1", "test=false"],
        root,
        cache_dir=root.parent / "cache",
    )
    train(cfg)
    torch.set_num_threads(before)
    return root / "run" / "checkpoints" / "last.ckpt"


def _predict(capsys, ckpt: Path, text: str | None = None, file: Path | None = None) -> list[dict]:
    cfg = OmegaConf.create(
        {"ckpt_path": str(ckpt), "text": text, "file": file and str(file), "format": "json"}
    )
    cfg.batch_size = 256
    probabilities = predict(cfg)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["positive_probability"] for r in rows] == [round(p, 6) for p in probabilities]
    return rows


def _valid(row: dict) -> bool:
    p = row["positive_probability"]
    return 0.0 <= p <= 1.0 and row["label"] == ("positive" if p >= 0.5 else "negative")


@pytest.mark.parametrize("name", [pytest.param(k, id=k) for k in TEXTS])
def test_odd_text_gets_a_valid_prediction(checkpoint: Path, capsys, one_thread, name: str):
    rows = _predict(capsys, checkpoint, text=TEXTS[name])
    assert len(rows) == 1 and _valid(rows[0]), rows


def test_odd_texts_in_one_file_match_their_single_predictions(
    checkpoint: Path, capsys, one_thread, tmp_path: Path
) -> None:
    """Batched with each other (padding to the 100,000-character review), answers do not move."""
    lines = [t.replace("\n", " ") for t in TEXTS.values()]
    file = tmp_path / "reviews.txt"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    together = _predict(capsys, checkpoint, file=file)
    alone = [_predict(capsys, checkpoint, text=t)[0] for t in lines]
    assert len(together) == len(lines)
    np.testing.assert_allclose(
        [r["positive_probability"] for r in together],
        [r["positive_probability"] for r in alone],
        atol=1e-5,
    )


def _truncated_checkpoint(tmp: Path, ckpt: Path) -> Path:
    data = ckpt.read_bytes()
    (tmp / "torn.ckpt").write_bytes(data[: len(data) // 2])
    return tmp / "torn.ckpt"


def _zip_of_text(tmp: Path, _ckpt: Path) -> Path:
    with zipfile.ZipFile(tmp / "archive.ckpt", "w") as z:
        z.writestr("notes.txt", "not a model")
    return tmp / "archive.ckpt"


def _file(data: bytes) -> Callable[[Path, Path], Path]:
    def write(tmp: Path, _ckpt: Path) -> Path:
        (tmp / "other.ckpt").write_bytes(data)
        return tmp / "other.ckpt"

    return write


def _saved(obj: object) -> Callable[[Path, Path], Path]:
    def write(tmp: Path, _ckpt: Path) -> Path:
        torch.save(obj, tmp / "other.ckpt")
        return tmp / "other.ckpt"

    return write


NOT_CHECKPOINTS = {
    "missing-file": (lambda tmp, _: tmp / "nope.ckpt", "does not exist"),
    "a-folder": (lambda tmp, ckpt: ckpt.parent.parent, "is a folder. Pass the .ckpt file"),
    "empty-file": (_file(b""), "is not an rnnlab checkpoint"),
    "text-file": (_file(b"epoch=3 val/acc=0.9\n"), "is not an rnnlab checkpoint"),
    "random-bytes": (_file(np.random.default_rng(0).bytes(4096)), "is not an rnnlab checkpoint"),
    "truncated-checkpoint": (_truncated_checkpoint, "is not an rnnlab checkpoint"),
    "zip-of-other-files": (_zip_of_text, "is not an rnnlab checkpoint"),
    "torch-file-of-a-dict": (_saved({"weights": torch.ones(2)}), "is not an rnnlab checkpoint"),
    "torch-file-of-a-tensor": (_saved(torch.ones(2)), "is not an rnnlab checkpoint"),
}


@pytest.mark.parametrize("case", [pytest.param(k, id=k) for k in NOT_CHECKPOINTS])
def test_a_file_that_is_not_a_checkpoint_gets_a_clear_error(
    checkpoint: Path, tmp_path: Path, case: str
) -> None:
    write, needle = NOT_CHECKPOINTS[case]
    path = write(tmp_path, checkpoint)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message and needle in message, message
    assert "ckpt" in message.split(needle, 1)[1]  # and says what to pass instead
