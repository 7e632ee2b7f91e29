"""The files of a user's message: stored through the file store, and the few image formats
vision models accept turned into image inputs (everything else reaches the model as a file)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from app.chat import tokens
from app.chat.limits import TurnBudget
from app.chat.values import ChatAnswer, Upload
from app.files import FileStore, FileStoreError, StoredFile, is_supported

# What OpenAI-compatible vision inputs take. SVG, TIFF, HEIC, PSD or raw photos would fail the
# whole request, so they are described as files; the code can still open them.
VISION_MIME_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}


def vision_mime(stored: StoredFile, max_bytes: int) -> str | None:
    """The MIME type to send this file to a vision model as, or None (it stays a file)."""
    if stored.category != "image" or stored.size > max_bytes:
        return None
    return VISION_MIME_TYPES.get(stored.type)


async def store_upload(
    store: FileStore,
    user_id: str,
    upload: Upload,
    answer: ChatAnswer,
    scope: str,
    limits: TurnBudget | None = None,
) -> StoredFile | None:
    """The stored file (in the conversation's scope), or None with a notice on the answer
    saying why not (refused by the bot, over the message's upload bytes, unsupported, or the
    store's refusal)."""
    if upload.refused:
        answer.notices.append(f"{upload.filename}: {upload.refused}")
        return None
    over = limits.refuse_upload(len(upload.data)) if limits is not None else ""
    if over:
        answer.notices.append(f"{upload.filename}: {over}")
        return None
    if not is_supported(upload.filename):
        answer.notices.append(f"{upload.filename}: this file type is not supported.")
        return None
    try:
        if upload.from_reply:
            # Replying to a message again (or to the bot's own plot) must not store a copy each
            # time: the user's identical file of this scope is used.
            digest = hashlib.sha256(upload.data).hexdigest()
            for stored in await store.list(user_id):
                if stored.sha256 == digest and stored.scope == scope:
                    return stored
        return await store.save(user_id, upload.filename, upload.data, scope=scope)
    except FileStoreError as exc:
        answer.notices.append(f"{upload.filename}: {exc}")
        return None


def with_images(message: dict, images: Sequence[tuple[str, bytes]]) -> tuple[dict, int]:
    """The user message with (mime, bytes) images as image parts after its text, and their
    token estimate. Blocking (a header probe and base64 of each): run it in a thread."""
    if not images:
        return message, 0
    parts: list[dict] = [{"type": "text", "text": message["content"]}]
    estimate = 0
    for mime, data in images:
        estimate += tokens.image_tokens(*tokens.image_size(data))
        encoded = base64.b64encode(data).decode("ascii")
        parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{encoded}"}})
    return {"role": "user", "content": parts}, estimate
