"""The custom ids of the answer's buttons. Each carries what its click needs (whose answer, which
turn and run, which message), so a click works after a restart: the code is found again in the
stored history, nothing is kept in memory but the Stop of turns still running.

Discord allows 100 characters; the longest here is about 60.
"""

from __future__ import annotations

import re

_USER = r"(?P<user>[0-9]{1,20})"
_TURN = r"(?P<turn>[0-9a-f]{1,32})"
_RUN = r"(?P<run>[0-9]{1,3})"

STOP = re.compile(rf"ci:stop:{_USER}:{_TURN}")
RERUN = re.compile(rf"ci:rerun:{_USER}:{_TURN}:{_RUN}")
PICK = re.compile(rf"ci:pick:{_USER}:{_TURN}")
CODE = re.compile(rf"ci:code:{_USER}:{_TURN}:{_RUN}")
DELETE = re.compile(rf"ci:delete:{_USER}:(?P<head>[0-9]{{1,20}})")


def stop_id(user_id: int, turn_id: str) -> str:
    return f"ci:stop:{user_id}:{turn_id}"


def rerun_id(user_id: int, turn_id: str, number: int) -> str:
    return f"ci:rerun:{user_id}:{turn_id}:{number}"


def pick_id(user_id: int, turn_id: str) -> str:
    """The menu that re-runs one of several runs (the run number is the chosen value)."""
    return f"ci:pick:{user_id}:{turn_id}"


def code_id(user_id: int, turn_id: str, number: int = 0) -> str:
    """Run `number`'s code, or every run's when 0."""
    return f"ci:code:{user_id}:{turn_id}:{number}"


def delete_id(user_id: int, head_id: int) -> str:
    """Delete the answer that starts with message `head_id` (and its follow-ups)."""
    return f"ci:delete:{user_id}:{head_id}"
