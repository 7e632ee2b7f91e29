"""Token counting for the history budget: tiktoken when it knows the model, an estimate otherwise.

The model's own usage report is what gets recorded and billed; these counts only decide how much
history fits and what a request reserves of a daily budget. Images are estimated the way OpenAI
bills them (tiles of 512 px at high detail).

tiktoken downloads its encoding files on first use (cached under TIKTOKEN_CACHE_DIR; the bot's
image carries them). That download blocks, may hang behind a firewall and fails offline, so it
never happens on the event loop: `await prepare(model)` loads the encoding in a thread, waiting
at most LOAD_WAIT_SECONDS, and the counting functions only use encodings already loaded. Until
one is (or when it cannot be), counts are estimates.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct

import structlog

log = structlog.get_logger(__name__)
LOAD_WAIT_SECONDS = 2.0

# Context windows of known model families (longest prefix wins); unknown models get the fallback.
CONTEXT_WINDOWS = {
    "gpt-3.5": 16_385,
    "gpt-4": 8_192,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_000_000,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
}
FALLBACK_CONTEXT = 8_192
MESSAGE_OVERHEAD = 4
LOW_DETAIL_TOKENS = 85
TILE_TOKENS = 170


def context_window(model: str, unknown: int | None = None) -> int:
    """The model's context window from the table; `unknown` (OPENAI_CONTEXT_WINDOW) or the
    fallback for models the table does not know (local models)."""
    matches = [prefix for prefix in CONTEXT_WINDOWS if model.startswith(prefix)]
    if matches:
        return CONTEXT_WINDOWS[max(matches, key=len)]
    return unknown or FALLBACK_CONTEXT


def history_budget(model: str, configured: int, unknown_window: int | None = None) -> int:
    """Tokens of history sent with a request: the setting, never over half the context window."""
    return min(configured, context_window(model, unknown_window) // 2)


_loaded: dict[str, object | None] = {}
"""model -> its encoding, or None (unknown model, or the files could not be fetched)."""
_loading: dict[str, asyncio.Future] = {}


def _load(model: str):
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return None  # a model tiktoken does not know (local models): estimates
    except Exception as exc:  # offline, or a proxy: estimates, said once
        log.warning(
            "tiktoken encoding unavailable; token counts are estimates",
            model=model,
            error=type(exc).__name__,
        )
        return None


async def prepare(model: str) -> None:
    """Load the model's encoding off the event loop, once; wait LOAD_WAIT_SECONDS at most (a
    slow download goes on in the background, and counts are estimates meanwhile)."""
    if model in _loaded:
        return
    future = _loading.get(model)
    if future is None:
        future = asyncio.ensure_future(asyncio.to_thread(_load, model))
        _loading[model] = future
        future.add_done_callback(lambda done: _finish(model, done))
    try:
        await asyncio.wait_for(asyncio.shield(future), LOAD_WAIT_SECONDS)
    except Exception:  # still loading (or failed): estimates for now
        return


def _finish(model: str, future: asyncio.Future) -> None:
    _loading.pop(model, None)
    _loaded[model] = None if future.cancelled() or future.exception() else future.result()


def _encoding(model: str):
    return _loaded.get(model)


def count_text(text: str, model: str) -> int:
    encoding = _encoding(model)
    if encoding is not None:
        return len(encoding.encode(text, disallowed_special=()))
    # About four characters per token for English and code; bytes keep other scripts honest.
    return max(len(text) // 4, len(text.encode("utf-8")) // 6) + 1


def image_tokens(width: int, height: int, detail: str = "auto") -> int:
    if detail == "low":
        return LOW_DETAIL_TOKENS
    if width <= 0 or height <= 0:
        width = height = 1024
    scale = min(1.0, 2048 / max(width, height))
    fitted_w, fitted_h = width * scale, height * scale
    scale = min(1.0, 768 / min(fitted_w, fitted_h))
    fitted_w, fitted_h = fitted_w * scale, fitted_h * scale
    tiles = math.ceil(fitted_w / 512) * math.ceil(fitted_h / 512)
    return TILE_TOKENS * tiles + LOW_DETAIL_TOKENS


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, GIF or JPEG from its header; (0, 0) when unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return 0, 0


def count_message(message: dict, model: str) -> int:
    """Tokens of one Chat Completions message, image parts included."""
    total = MESSAGE_OVERHEAD
    content = message.get("content")
    if isinstance(content, str):
        total += count_text(content, model)
    elif isinstance(content, list):
        for part in content:
            if part.get("type") == "text":
                total += count_text(part.get("text", ""), model)
            elif part.get("type") == "image_url":
                # The size is not in the message; callers that have the bytes count them exactly.
                total += image_tokens(0, 0, part.get("image_url", {}).get("detail", "auto"))
    if message.get("tool_calls"):
        total += count_text(json.dumps(message["tool_calls"]), model)
    return total
