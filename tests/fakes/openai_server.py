"""A scripted OpenAI-compatible Chat Completions server on 127.0.0.1, used as the SDK's base_url.

Each request takes the next scripted step: `reply("text")`, `tool_call(code=...)`,
`tool_calls(...)`, `error(429)`, or a function of the request body returning one of those (to
answer what the model was shown). A step with `slow(seconds, step)` is answered after that delay
(a request still in flight). With `reject_tools` set to (status, message), every request that
offers tools gets that error without taking a step, as Ollama, vLLM or llama.cpp answer for a
model or server without tool support. Every request body is kept in `requests`, so tests see
exactly what the model saw.

A request with `"stream": true` is answered as a real server streams (server-sent events): the
text in small pieces, each tool call's id and name first and its arguments in fragments, the
finish reason, then a usage chunk when `stream_options.include_usage` asks for it (a step made
with `usage=None` sends none, as some servers do), then `[DONE]`. `hold=event` pauses a stream
after its first piece until the test sets the event; `cut=True` drops the connection there.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable

from aiohttp import web

_ids = itertools.count(1)


def reply(
    text: str,
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
    cached_tokens: int = 0,
    *,
    usage: bool | None = True,
    **stream_options,
) -> dict:
    return {
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "usage": (prompt_tokens, completion_tokens) if usage else None,
        "cached_tokens": cached_tokens,
        **stream_options,
    }


def call(
    code: str,
    timeout: float | None = None,
    name: str = "execute_python_code",
    raw_arguments: str | None = None,
    call_id: str | None = None,
) -> dict:
    """One tool call of a `tool_calls(...)` step."""
    args = {"code": code} if timeout is None else {"code": code, "timeout": timeout}
    return {
        "id": call_id or f"call_{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": raw_arguments or json.dumps(args)},
    }


def tool_calls(*calls: dict, text: str | None = None, usage: bool = True, **options) -> dict:
    """A reply with several tool calls (and optionally some text before them)."""
    return {
        "message": {"role": "assistant", "content": text, "tool_calls": list(calls)},
        "finish_reason": "tool_calls",
        "usage": (150, 30) if usage else None,
        **options,
    }


def tool_call(
    code: str,
    timeout: float | None = None,
    name: str = "execute_python_code",
    raw_arguments: str | None = None,
    **options,
) -> dict:
    return tool_calls(call(code, timeout, name, raw_arguments), **options)


def tool_results(body: dict) -> list[dict]:
    """Every tool message the model was sent, decoded."""
    return [json.loads(m["content"]) for m in body["messages"] if m.get("role") == "tool"]


def error(
    status: int, message: str = "scripted failure", code: str | None = None, headers=None
) -> dict:
    return {"status": status, "message": message, "code": code, "headers": headers or {}}


def slow(seconds: float, step: dict) -> dict:
    return {**step, "delay": seconds}


def last_tool_result(body: dict) -> dict:
    """The JSON of the newest tool message the model was sent."""
    tools = [m for m in body["messages"] if m.get("role") == "tool"]
    return json.loads(tools[-1]["content"])


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[dict | Callable[[dict], dict]] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.reject_tools: tuple[int, str] | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def add(self, *steps) -> None:
        self.script.extend(steps)

    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.reject_tools is not None and body.get("tools"):
            status, message = self.reject_tools
            return web.json_response(
                {"error": {"message": message, "type": "api_error", "code": None}}, status=status
            )
        if not self.script:
            return web.json_response({"error": {"message": "script exhausted"}}, status=500)
        step = self.script.pop(0)
        if callable(step):
            step = step(body)
        if step.get("delay"):
            await asyncio.sleep(step["delay"])
        if "status" in step:
            return web.json_response(
                {"error": {"message": step["message"], "type": "scripted", "code": step["code"]}},
                status=step["status"],
                headers=step["headers"],
            )
        if body.get("stream"):
            return await self._stream(request, body, step)
        answer = {
            "id": f"chatcmpl-{next(_ids)}",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": body["model"],
            "choices": [
                {"index": 0, "message": step["message"], "finish_reason": step["finish_reason"]}
            ],
        }
        if step["usage"] is not None:
            answer["usage"] = _usage(*step["usage"], step.get("cached_tokens", 0))
        return web.json_response(answer)

    async def _stream(self, request: web.Request, body: dict, step: dict) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk_id = f"chatcmpl-{next(_ids)}"

        def chunk(delta: dict | None, finish: str | None = None, usage=None) -> bytes:
            data = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": body["model"],
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            if usage is not None:
                data["usage"] = usage
            return f"data: {json.dumps(data)}\n\n".encode()

        pieces = [chunk({"role": "assistant", "content": ""})]
        message = step["message"]
        text = message.get("content") or ""
        pieces += [chunk({"content": text[i : i + 7]}) for i in range(0, len(text), 7)]
        for index, tool in enumerate(message.get("tool_calls") or ()):
            function = tool["function"]
            pieces.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": tool["id"],
                                "type": "function",
                                "function": {"name": function["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            arguments = function["arguments"]
            pieces += [
                chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
                for part in (arguments[i : i + 11] for i in range(0, len(arguments), 11))
            ]
        pieces.append(chunk({}, step["finish_reason"]))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and step["usage"] is not None:
            pieces.append(chunk(None, usage=_usage(*step["usage"], step.get("cached_tokens", 0))))
        pieces.append(b"data: [DONE]\n\n")
        for number, piece in enumerate(pieces):
            await response.write(piece)
            if number == 1 and step.get("hold") is not None:
                await step["hold"].wait()
            if number == 1 and step.get("cut"):
                request.transport.close()
                return response
        await response.write_eof()
        return response


def _usage(prompt: int, completion: int, cached: int = 0) -> dict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class ThreadedFakeOpenAI:
    """The same server on its own event loop thread, for code that calls asyncio.run itself."""

    def __init__(self) -> None:
        import asyncio
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(FakeOpenAI().start(), self.loop).result(10)

    def stop(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
