"""`predict.py`: label reviews with a checkpoint; the checkpoint carries its text pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from rnnlab.checkpoint import load_checkpoint


def read_inputs(text: str | None, file: str | None) -> list[str]:
    if (text is None) == (file is None):
        raise SystemExit('predict.py needs exactly one of text="..." or file=reviews.txt')
    if text is not None:
        return [str(text)]
    path = Path(file).expanduser()
    if not path.is_file():
        raise SystemExit(f"file={path} does not exist: give a text file with one review a line.")
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def format_prediction(probability: float, style: str) -> str:
    label = "positive" if probability >= 0.5 else "negative"
    if style == "json":
        return json.dumps({"label": label, "positive_probability": round(probability, 6)})
    return f"{label}\t{probability:.4f}"


def run(cfg: DictConfig) -> list[float]:
    if cfg.format not in ("text", "json"):
        raise SystemExit(f"format must be text or json, got {cfg.format!r}")
    texts = read_inputs(cfg.text, cfg.file)
    model, _ = load_checkpoint(cfg.ckpt_path)
    probabilities = model.predict_texts(texts, batch_size=cfg.batch_size).tolist()
    for probability in probabilities:
        sys.stdout.write(format_prediction(probability, cfg.format) + "\n")
    return probabilities
