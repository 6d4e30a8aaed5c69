"""Building blocks of config checks: each rule is (check, what is allowed).

`validate.py` applies them to the composed config; each model family declares its own rules for
its keys (`config_rules()` on its net class) from these blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Rule = tuple[Callable[[Any], bool], str]


def integer(low: int, nullable: bool = False) -> Rule:
    """An int (not a bool) >= low, or None if nullable."""

    def ok(v: Any) -> bool:
        return (nullable and v is None) or (
            isinstance(v, int) and not isinstance(v, bool) and v >= low
        )

    return ok, f"an integer >= {low}" + (" or null" if nullable else "")


def fraction(low_open: bool, high_open: bool) -> Rule:
    """A number between 0 and 1, each end open or closed."""

    def ok(v: Any) -> bool:
        if not isinstance(v, int | float) or isinstance(v, bool):
            return False
        above = v > 0 if low_open else v >= 0
        below = v < 1 if high_open else v <= 1
        return above and below

    return ok, f"a number in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"


def positive(nullable: bool = False) -> Rule:
    def ok(v: Any) -> bool:
        if nullable and v is None:
            return True
        return isinstance(v, int | float) and not isinstance(v, bool) and v > 0

    return ok, "a number > 0" + (" or null" if nullable else "")


def positive_list() -> Rule:
    """A non-empty list of numbers > 0 (e.g. candidate values to choose from on validation)."""

    def ok(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(positive()[0](x) for x in v)

    return ok, "a non-empty list of numbers > 0, e.g. [0.1,1.0]"


def non_negative() -> Rule:
    def ok(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and v >= 0

    return ok, "a number >= 0"


def choice(values: Iterable[str], nullable: bool = False) -> Rule:
    allowed = sorted(values)
    return (lambda v: v in allowed or (nullable and v is None)), "one of " + ", ".join(
        allowed + (["null"] if nullable else [])
    )


def boolean() -> Rule:
    return (lambda v: isinstance(v, bool)), "true or false"


def combination(values: Iterable[str]) -> Rule:
    """One of `values`, or several joined by '+' (e.g. final+max)."""
    names = tuple(values)

    def ok(v: Any) -> bool:
        return isinstance(v, str) and bool(v) and set(v.split("+")) <= set(names)

    example = "+".join(names[:2])
    return ok, f"one of {', '.join(names)}, or several joined by '+' (e.g. {example})"


def integers(low: int) -> Rule:
    """A non-empty list of distinct ints >= low."""

    def ok(v: Any) -> bool:
        return (
            isinstance(v, list | tuple)
            and bool(v)
            and len(set(v)) == len(v)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= low for x in v)
        )

    return ok, f"a non-empty list of distinct integers >= {low}"
