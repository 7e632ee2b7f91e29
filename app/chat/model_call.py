"""One model request of a turn: the daily budget around it, the reply streamed (or not) as a
ModelReply (app/chat/streaming.py), usage and cost recorded after it, and the fallback for
servers that reject tools (OPENAI_TOOLS=auto).

Local servers often refuse a request that offers tools (Ollama: "... does not support tools";
vLLM without --enable-auto-tool-choice; llama.cpp without --jinja). With `auto`, such a refusal
is answered by sending the same turn again without tools, as plain chat, and the model is
remembered as chat-only until the process restarts; the user is told code execution is not
available with that model.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import openai
import structlog

from app.chat import tokens
from app.chat.budget import DailyBudget
from app.chat.messages import TOOLS_UNAVAILABLE, rejects_tools
from app.chat.outage import USAGE_NOT_RECORDED, or_tell
from app.chat.pricing import PriceTable
from app.chat.records import ChatRecords, DailyAmounts, UsageRecord
from app.chat.streaming import ModelReply, TextSink, request_reply
from app.chat.values import ChatAnswer

log = structlog.get_logger(__name__)

CHAT_ONLY_PROMPT = (
    "You are a data analysis assistant in a chat. Code execution is not available with this "
    "model: answer directly, and if the user asks you to run code or read their files, say that "
    "another model (/model) can do that. Keep answers short; the chat shows Markdown."
)


class BudgetExceeded(Exception):
    """A model request would pass the user's daily budget; str() is the sentence for them."""


class ToolSupport:
    """Which models are offered the code tool: OPENAI_TOOLS and what servers answered."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"tools mode must be auto, on or off, not {mode!r}")
        self.mode = mode
        self._chat_only: set[str] = set()

    def offers(self, model: str) -> bool:
        return self.mode == "on" or (self.mode == "auto" and model not in self._chat_only)

    def learned_chat_only(self, model: str) -> bool:
        """Whether the server said this model cannot take tools (the user is told so)."""
        return self.mode == "auto" and model in self._chat_only

    def remember_chat_only(self, model: str) -> None:
        self._chat_only.add(model)


def chat_only(messages: list[dict]) -> list[dict]:
    """The conversation as plain chat: the chat-only prompt, no file list, no tool messages."""
    plain: list[dict] = [{"role": "system", "content": CHAT_ONLY_PROMPT}]
    for message in messages:
        role = message.get("role")
        if role in ("system", "tool"):
            continue
        if role == "assistant" and message.get("tool_calls"):
            if message.get("content"):
                plain.append({"role": "assistant", "content": message["content"]})
            continue
        plain.append(message)
    return plain


class ModelCaller:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        records: ChatRecords,
        prices: PriceTable,
        *,
        budget: DailyBudget | None = None,
        tools: ToolSupport | None = None,
        stream: bool = True,
    ) -> None:
        self.client = client
        self.records = records
        self.prices = prices
        self.budget = budget
        self.tools = tools or ToolSupport()
        self.stream = stream

    async def complete(
        self,
        user_id: str,
        model: str,
        messages: list[dict],
        tools: list[Any] | None,
        answer: ChatAnswer,
        on_text: TextSink | None = None,
    ) -> ModelReply:
        """The model's reply to `messages`, offering `tools` when given; `on_text` hears its
        text as it streams. Raises BudgetExceeded, or the SDK's error when the request fails."""
        if tools is None and not self.tools.offers(model):
            messages = chat_only(messages)
        try:
            return await self._request(user_id, model, messages, tools, answer, on_text)
        except openai.APIStatusError as exc:
            if tools is None or self.tools.mode != "auto" or not rejects_tools(exc):
                raise
            log.warning(
                "the model server rejected tools; answering without them",
                model=model,
                status=exc.status_code,
            )
            self.tools.remember_chat_only(model)
            if TOOLS_UNAVAILABLE not in answer.notices:
                answer.notices.append(TOOLS_UNAVAILABLE)
            return await self._request(user_id, model, chat_only(messages), None, answer, on_text)

    async def _request(
        self, user_id, model, messages, tools, answer: ChatAnswer, on_text: TextSink | None
    ) -> ModelReply:
        reservation = None
        if self.budget is not None:
            estimate = sum(tokens.count_message(m, model) for m in messages)
            if tools:
                estimate += tokens.count_text(json.dumps(tools), model)
            cost = self.prices.cost(model, estimate, 0) or 0.0
            reservation = await self.budget.reserve_request(user_id, estimate, cost)
            if reservation is None:
                raise BudgetExceeded(await self.budget.request_refusal(user_id, estimate, cost))
        used = DailyAmounts()
        try:
            reply = await request_reply(
                self.client,
                model=model,
                messages=messages,
                tools=tools,
                stream=self.stream,
                on_text=on_text,
            )
            record = await self._record_usage(user_id, model, messages, reply, answer)
            used = DailyAmounts(
                tokens=record.prompt_tokens + record.completion_tokens, cost=record.cost or 0.0
            )
            return reply
        finally:
            if self.budget is not None:
                # A failed request releases its reservation; a finished one is billed in full.
                await asyncio.shield(self.budget.settle(reservation, used))

    async def _record_usage(
        self, user_id, model, messages, reply: ModelReply, answer
    ) -> UsageRecord:
        if reply.usage is not None:
            prompt, completion, cached = reply.usage
        else:  # servers that do not report usage: estimate, so totals are never silently zero
            cached = 0
            prompt = sum(tokens.count_message(m, model) for m in messages)
            completion = tokens.count_text(reply.content, model) + sum(
                tokens.count_text(call.name + call.arguments, model) for call in reply.tool_calls
            )
        record = UsageRecord(
            user_id=user_id,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=self.prices.cost(model, prompt, completion, cached),
            at=datetime.now(UTC),
            cached_tokens=cached,
        )
        answer.usage.append(record)
        await or_tell(self.records.record_usage(record), answer, USAGE_NOT_RECORDED, None)
        return record
