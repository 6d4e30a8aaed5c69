"""`predict.py`: label reviews with a checkpoint; the checkpoint carries its text pipeline.

Reviews come from `text="..."` (one review, typed as it is: commas, quotes, brackets and `=`
included), `file=reviews.txt` (one review a line; `file=-` reads standard input), or a column
of a CSV / TSV file (`file=reviews.csv column=review`, also .csv.gz, .tsv, .tsv.gz).
Predictions go to standard output, or to `output=PATH`, written atomically, as `format=text`
(label TAB probability), `json` (one object a line) or `csv` (a header, then
label,positive_probability a row); the format defaults to the output file's extension, else text.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd
from omegaconf import DictConfig

from rnnlab.atomic import atomic_write
from rnnlab.checkpoint import load_checkpoint
from rnnlab.data.sources import CSV_SUFFIXES, TSV_SUFFIXES, DataError, is_table, read_table
from rnnlab.errors import ConfigError

FORMATS = ("text", "json", "csv")
# output file extension -> format, when format is not given
_FORMAT_OF_SUFFIX = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}
# the review column of a CSV / TSV file when `column` is not given
DEFAULT_COLUMN = "review"
_TEXT_OVERRIDE = re.compile(r"^(\+{0,2}text)=(.*)$", re.DOTALL)


def hydra_quoted(value: str) -> str:
    """`value` as a single-quoted Hydra override value that Hydra and OmegaConf read back as
    exactly `value`, whatever it holds (commas, quotes, brackets, `=`, `${`, backslashes).

    OmegaConf reads a backslash run before `${` as escapes (`\\${` is a literal `${`); Hydra's
    quoted strings read a backslash run before a quote, or at the end, as escapes.
    """
    value = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", value)
    value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
    value = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value)
    return f"'{value}'"


def quote_text_overrides(argv: Sequence[str]) -> list[str]:
    """Command-line arguments with every `text=REVIEW` quoted for Hydra, so the review reads as
    typed: the shell has already removed the user's quotes, and Hydra would otherwise take a
    comma for a list (`Ambiguous value`) and brackets, quotes or `=` for its own syntax.

    A review still wrapped in one pair of quotes (the earlier advice, `'text="Dull, slow."'`)
    loses that pair, as Hydra would have removed it. Other arguments pass unchanged.
    """
    quoted = []
    for arg in argv:
        match = _TEXT_OVERRIDE.match(arg)
        if match:
            key, value = match.groups()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            arg = f"{key}={hydra_quoted(value)}"
        quoted.append(arg)
    return quoted


def read_inputs(
    text: str | None,
    file: str | None,
    column: str | None = None,
    stdin: TextIO | None = None,
) -> list[str]:
    """The reviews to label: `text`, the lines of `file` (`-`: of `stdin`, default
    sys.stdin), or the `column` of a CSV / TSV `file` ("review" when not given). Text that is
    not UTF-8 is read with replacement characters, as a review's odd bytes are."""
    column = None if column is None else str(column)
    if (text is None) == (file is None):
        raise ConfigError(
            'predict.py needs exactly one of text="..." (a review), file=reviews.txt (one '
            "review a line; file=- reads standard input) or file=reviews.csv column=review."
        )
    if text is not None:
        if column is not None:
            raise ConfigError(
                f"column={column} picks the review column of a CSV or TSV file, but no file= "
                "was given: drop column=, or give file=reviews.csv with it."
            )
        return [str(text)]
    if str(file) == "-":
        if column is not None:
            raise ConfigError(
                f"column={column} picks the review column of a CSV or TSV file, but file=- reads "
                "standard input as one review a line: drop column=, or give the file's path."
            )
        if stdin is None:
            return sys.stdin.buffer.read().decode("utf-8", errors="replace").splitlines()
        return stdin.read().splitlines()
    path = Path(str(file)).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataError(
            f"file={path} {what}: give a text file with one review a line, a CSV or TSV file "
            "with a review column (with column=NAME), or file=- to read standard input."
        )
    if is_table(path):
        return read_column(path, column or DEFAULT_COLUMN, given=column is not None)
    if column is not None:
        raise ConfigError(
            f"column={column} picks the review column of a CSV or TSV file, but {path} is not "
            f"one (its name ends in none of {', '.join(CSV_SUFFIXES + TSV_SUFFIXES)}). Drop "
            "column= to read it as one review a line, or give the file a .csv / .tsv name."
        )
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise DataError(
            f"file={path} cannot be read ({err.strerror}): check its permissions."
        ) from err


def read_column(path: Path, column: str, given: bool = True) -> list[str]:
    """Every cell of `column` in the CSV / TSV file `path`, one review each, in file order."""
    frame = read_table(path)
    if column not in frame.columns:
        hint = "" if given else f" (column= was not given, so predict.py looked for {column!r})"
        example = _likely_text_column(frame)
        raise DataError(
            f"{path} has no column {column!r}{hint}; its columns: {list(frame.columns)}. Set "
            "column=NAME to the column that holds the review text"
            + (f", e.g. column={example}." if example else ".")
        )
    return frame[column].tolist()


def _likely_text_column(frame: pd.DataFrame) -> str | None:
    """The column with the longest cells on average: most likely the one holding reviews."""
    if frame.empty or not len(frame.columns):
        return None
    lengths = {name: frame[name].astype(str).str.len().mean() for name in frame.columns}
    return str(max(lengths, key=lengths.get))


def output_format(style: str | None, output: str | None) -> str:
    """The format to write: `style` if given, else the `output` file's extension, else text."""
    if style is None:
        suffix = Path(output).suffix.lower() if output else ""
        return _FORMAT_OF_SUFFIX.get(suffix, "text")
    if style not in FORMATS:
        raise ConfigError(
            f"format={style!r} must be one of {', '.join(FORMATS)} (or left unset: the output "
            "file's extension, .csv or .json/.jsonl, else text)."
        )
    return style


def format_prediction(probability: float, style: str) -> str:
    """One prediction as a line of `style` text or json."""
    label = "positive" if probability >= 0.5 else "negative"
    if style == "json":
        return json.dumps({"label": label, "positive_probability": round(probability, 6)})
    return f"{label}\t{probability:.4f}"


def render(probabilities: Sequence[float], style: str) -> str:
    """All predictions in `style`: lines of text or json, or a CSV with a header row."""
    if style != "csv":
        return "".join(format_prediction(p, style) + "\n" for p in probabilities)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "positive_probability"])
    for p in probabilities:
        writer.writerow(["positive" if p >= 0.5 else "negative", round(p, 6)])
    return buffer.getvalue()


def _check_output(output: str | None, file: str | None) -> Path | None:
    """`output` as a path that can be written without losing the input, or None for stdout."""
    if output is None or str(output) == "-":
        return None
    path = Path(str(output)).expanduser()
    if path.is_dir():
        raise ConfigError(
            f"output={path} is a folder: give a file path, e.g. output={path / 'labels.csv'}."
        )
    if file not in (None, "-") and path.exists() and path.samefile(Path(str(file)).expanduser()):
        raise ConfigError(
            f"output={path} is the input file (file={file}): writing there would replace the "
            "reviews with their labels. Give another output path."
        )
    return path


def run(cfg: DictConfig) -> list[float]:
    """Label the reviews `cfg` names and print or write the predictions; returns the
    positive-class probabilities in input order."""
    output = _check_output(cfg.get("output"), cfg.get("file"))
    style = output_format(cfg.get("format"), None if output is None else str(output))
    texts = read_inputs(cfg.get("text"), cfg.get("file"), cfg.get("column"))
    model, _ = load_checkpoint(cfg.ckpt_path)
    probabilities = model.predict_texts(texts, batch_size=cfg.batch_size).tolist()
    rendered = render(probabilities, style)
    if output is None:
        sys.stdout.write(rendered)
    else:
        atomic_write(output, lambda f: f.write(rendered.encode("utf-8")))
        print(f"Wrote {len(probabilities)} predictions ({style}) to {output}.", file=sys.stderr)
    return probabilities
