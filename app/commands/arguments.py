"""Argument types shared by the CLI commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def positive_number(unit: str) -> Callable[[str], float]:
    """An argparse type for a positive number of `unit` (seconds, days)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}")
        return value

    return parse
