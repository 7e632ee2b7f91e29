"""The conversation history: turns flattened into messages, shortened and cut at safe points.

A turn is the list of Chat Completions messages it added, so trimming drops whole turns and never
separates a tool call from its result.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.chat.records import Turn

SAVED_TOOL_CHARS = 4000  # run results kept in history are shortened: a document stays small


def flatten(turns: Sequence[Turn]) -> list[dict]:
    return [message for turn in turns for message in turn]


def shorten_tool_result(message: dict) -> dict:
    content = message.get("content")
    if message.get("role") != "tool" or not isinstance(content, str):
        return message
    if len(content) <= SAVED_TOOL_CHARS:
        return message
    return {**message, "content": content[:SAVED_TOOL_CHARS] + " [... shortened in history]"}


def complete_prefix(turn: Turn) -> Turn:
    """The longest start of a turn in which every tool call has its result (safe to save)."""
    pending: set[str] = set()
    safe = 0
    for index, message in enumerate(turn):
        for call in message.get("tool_calls") or ():
            pending.add(call["id"])
        if message.get("role") == "tool":
            pending.discard(message.get("tool_call_id"))
        if not pending:
            safe = index + 1
    return turn[:safe]
