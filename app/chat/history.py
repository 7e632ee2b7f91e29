"""The conversation history: turns flattened into messages, shortened and cut at safe points.

A turn keeps the list of Chat Completions messages it added, so trimming drops whole turns and
never separates a tool call from its result; its code runs are found again by their tool call ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from app.chat.records import Turn
from app.chat.streaming import ToolCall
from app.chat.tools import parse_arguments

SAVED_TOOL_CHARS = 4000  # run results kept in history are shortened: a document stays small


def flatten(turns: Sequence[Turn]) -> list[dict]:
    return [message for turn in turns for message in turn.messages]


def turn_to_keep(turn: Turn, saved: list[dict]) -> Turn:
    """The turn as saved: tool results shortened, an unfinished end marked, and only the runs
    whose tool calls are kept."""
    saved = [shorten_tool_result(m) for m in saved]
    if saved[-1].get("role") != "assistant" or saved[-1].get("tool_calls"):
        saved.append({"role": "assistant", "content": "(interrupted)"})
    present = {call["id"] for m in saved for call in m.get("tool_calls") or ()}
    return Turn(messages=saved, id=turn.id, runs=[r for r in turn.runs if r in present])


def shorten_tool_result(message: dict) -> dict:
    content = message.get("content")
    if message.get("role") != "tool" or not isinstance(content, str):
        return message
    if len(content) <= SAVED_TOOL_CHARS:
        return message
    return {**message, "content": content[:SAVED_TOOL_CHARS] + " [... shortened in history]"}


def complete_prefix(messages: Sequence[dict]) -> list[dict]:
    """The longest start of a turn in which every tool call has its result (safe to save).

    When a turn stops while some calls of one assistant message have their results and others
    do not (Stop, shutdown), the message keeps the answered calls: the runs that finished stay
    in the history, so Re-run and Code still find them.
    """
    saved: list[dict] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        calls = message.get("tool_calls") or []
        if not calls:
            saved.append(message)
            index += 1
            continue
        end = index + 1
        while end < len(messages) and messages[end].get("role") == "tool":
            end += 1
        results = messages[index + 1 : end]
        answered = {result.get("tool_call_id") for result in results}
        kept = [call for call in calls if call.get("id") in answered]
        if len(kept) == len(calls):
            saved.extend(messages[index:end])
            index = end
            continue
        if kept:
            kept_ids = {call["id"] for call in kept}
            saved.append({**message, "tool_calls": kept})
            saved.extend(r for r in results if r.get("tool_call_id") in kept_ids)
        break
    return saved


def run_arguments(turn: Turn, number: int) -> tuple[str, float | None] | None:
    """(code, timeout) of run `number` (from 1) of a turn, or None when the history lacks it."""
    if not 1 <= number <= len(turn.runs):
        return None
    call_id = turn.runs[number - 1]
    for message in turn.messages:
        for call in message.get("tool_calls") or ():
            if call.get("id") == call_id:
                try:
                    return parse_arguments(call.get("function", {}).get("arguments"))
                except ValueError:
                    return None
    return None


def unique_call_ids(turn: Turn, calls: list[ToolCall]) -> list[ToolCall]:
    """Some servers number calls from 0 in every reply: ids stay unique within a turn, so
    each result answers its own call and run N is found again by its id."""
    seen = {call["id"] for m in turn.messages for call in m.get("tool_calls") or ()}
    unique = []
    for call in calls:
        if call.id in seen:
            call = replace(call, id=f"call_{uuid.uuid4().hex[:24]}")
        seen.add(call.id)
        unique.append(call)
    return unique
