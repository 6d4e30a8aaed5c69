"""docs/reliability.md stays true: every test it names exists, every case of the tests its tables
use is named there, and its totals are the counts of its tables."""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
TEST_ID = re.compile(r"`((?:reliability/)?test_\w+\.py)::(\w+)(?:\[([^\]`]+)\])?`")


def _sections() -> dict[str, list[tuple[str, str, str | None]]]:
    """Heading -> the (file, test, case id) named under it."""
    sections: dict[str, list] = {}
    heading = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        sections.setdefault(heading, []).extend(TEST_ID.findall(line))
    return {h: [(f, t, c or None) for f, t, c in ids] for h, ids in sections.items()}


@functools.cache
def _module(file: str):
    path = ROOT / "tests" / file
    spec = importlib.util.spec_from_file_location(f"_doc_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _case_ids(function) -> list[str] | None:
    """The ids pytest gives the cases of a parametrized test (None when not parametrized)."""
    marks = [m for m in getattr(function, "pytestmark", []) if m.name == "parametrize"]
    if not marks:
        return None
    ids = []
    for value in marks[0].args[1]:
        if hasattr(value, "id") and value.id is not None:
            ids.append(value.id)
        else:
            ids.append(str(value.values[0] if hasattr(value, "values") else value))
    return ids


def _counted(prefix: str) -> set[tuple[str, str, str | None]]:
    return {i for h, ids in _sections().items() if h.startswith(prefix) for i in ids}


def test_every_named_test_exists() -> None:
    named = [i for ids in _sections().values() for i in ids]
    assert len(named) > 100
    for file, test, case in named:
        function = getattr(_module(file), test, None)
        assert function is not None, f"{file}::{test} does not exist"
        cases = _case_ids(function)
        if case is not None:
            assert cases is not None and case in cases, f"{file}::{test}[{case}] does not exist"


@pytest.mark.parametrize("prefix", ["Bad input", "Faults"])
def test_every_case_of_a_listed_test_is_in_the_tables(prefix: str) -> None:
    named = _counted(prefix)
    for file, test in {(f, t) for f, t, _ in named}:
        cases = _case_ids(getattr(_module(file), test))
        if cases is None:
            continue
        missing = set(cases) - {c for f, t, c in named if (f, t) == (file, test)}
        assert not missing, f"{file}::{test} cases missing from docs/reliability.md: {missing}"


def test_totals_are_the_counts_of_the_tables() -> None:
    text = DOC.read_text()
    bad = int(re.search(r"Bad-input test cases: \*\*(\d+)\*\*", text).group(1))
    faults = int(re.search(r"Faults survived: \*\*(\d+)\*\*", text).group(1))
    assert bad == len(_counted("Bad input"))
    assert faults == len(_counted("Faults"))
    assert "Data lost: **0**" in text
