"""One model request, streamed or not, as a ModelReply: the text, the tool calls, the usage.

Streaming uses Chat Completions with `stream=True` and `stream_options={"include_usage": True}`:
text deltas are handed on as they come, tool calls are assembled from their fragments (by index;
the id and name come once, the arguments in pieces), and the usage comes in the last chunk. A
server that sends no usage leaves it None; the caller estimates. `OPENAI_STREAMING=false` keeps
one plain request for servers that cannot stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai

TextSink = Callable[[str], None]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass
class ModelReply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: tuple[int, int, int] | None = None
    """(prompt, completion, cached prompt) tokens as the server reported them; None when it
    did not."""


class ReplyAssembler:
    """Builds a ModelReply from stream chunks (the SDK's ChatCompletionChunk objects)."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._calls: dict[int, dict[str, str]] = {}
        self._usage: tuple[int, int, int] | None = None

    def add(self, chunk: Any) -> str:
        """Take one chunk; returns the text it added (may be empty)."""
        counted = usage_of(getattr(chunk, "usage", None))
        if counted is not None:
            self._usage = counted
        added = []
        for choice in getattr(chunk, "choices", None) or ():
            if getattr(choice, "index", 0) not in (0, None):
                continue  # only one answer is asked for; others are ignored
            delta = getattr(choice, "delta", None)
            if delta is None:
                continue
            for text in (getattr(delta, "content", None), getattr(delta, "refusal", None)):
                if text:
                    added.append(text)
            for position, fragment in enumerate(getattr(delta, "tool_calls", None) or ()):
                self._add_call(fragment, position)
        text = "".join(added)
        if text:
            self._content.append(text)
        return text

    def _add_call(self, fragment: Any, position: int) -> None:
        index = getattr(fragment, "index", None)
        index = position if index is None else index
        call = self._calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
        if getattr(fragment, "id", None) and not call["id"]:
            call["id"] = fragment.id
        function = getattr(fragment, "function", None)
        if function is None:
            return
        if getattr(function, "name", None) and not call["name"]:
            call["name"] = function.name
        if getattr(function, "arguments", None):
            call["arguments"] += function.arguments

    def reply(self) -> ModelReply:
        calls = [
            ToolCall(
                id=call["id"] or f"call_{uuid.uuid4().hex[:24]}",
                name=call["name"],
                arguments=call["arguments"],
            )
            for _, call in sorted(self._calls.items())
        ]
        return ModelReply(content="".join(self._content), tool_calls=calls, usage=self._usage)


def reply_of_completion(response: Any) -> ModelReply:
    """The ModelReply of a plain (not streamed) ChatCompletion."""
    message = response.choices[0].message
    calls = [
        ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
        for call in message.tool_calls or ()
        if getattr(call, "type", "function") == "function" and getattr(call, "function", None)
    ]
    usage = usage_of(getattr(response, "usage", None))
    return ModelReply(content=message.content or "", tool_calls=calls, usage=usage)


def usage_of(usage: Any) -> tuple[int, int, int] | None:
    """(prompt, completion, cached prompt) tokens of a usage report, None without one."""
    if usage is None or getattr(usage, "prompt_tokens", None) is None:
        return None
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return (usage.prompt_tokens, usage.completion_tokens or 0, cached)


async def request_reply(
    client: openai.AsyncOpenAI,
    *,
    model: str,
    messages: list[Any],
    tools: list[Any] | None,
    stream: bool,
    on_text: TextSink | None = None,
) -> ModelReply:
    """One Chat Completions request; `on_text` gets each piece of text as it arrives."""
    offered: Any = tools if tools else openai.omit
    if not stream:
        response = await client.chat.completions.create(
            model=model, messages=messages, tools=offered
        )
        reply = reply_of_completion(response)
        if on_text is not None and reply.content:
            on_text(reply.content)
        return reply
    assembler = ReplyAssembler()
    chunks = await client.chat.completions.create(
        model=model,
        messages=messages,
        tools=offered,
        stream=True,
        stream_options={"include_usage": True},
    )
    async with chunks:  # closes the connection when the turn is stopped mid-stream
        async for chunk in chunks:
            text = assembler.add(chunk)
            if text and on_text is not None:
                on_text(text)
    return assembler.reply()
