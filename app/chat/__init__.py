"""Chat: conversation turns through an OpenAI-compatible model with a code tool. No discord here."""

from app.chat.records import ChatRecords, MemoryChatRecords, UsageRecord, UsageTotal
from app.chat.service import (
    ChatAnswer,
    ChatRateLimit,
    ChatService,
    CodeRun,
    DeliveredFile,
    RunObserver,
    Upload,
)

__all__ = [
    "ChatAnswer",
    "ChatRateLimit",
    "ChatRecords",
    "ChatService",
    "CodeRun",
    "DeliveredFile",
    "MemoryChatRecords",
    "RunObserver",
    "Upload",
    "UsageRecord",
    "UsageTotal",
]
