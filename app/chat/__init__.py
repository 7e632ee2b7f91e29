"""Chat: conversation turns through an OpenAI-compatible model with a code tool. No discord here.

It is where the file store and the sandbox meet: app/chat/run_files.py converts between them.
"""

from app.chat.limits import TurnLimits
from app.chat.messages import model_error_message, run_notice
from app.chat.rate_limit import ChatRateLimit
from app.chat.records import ChatRecords, MemoryChatRecords, Turn, UsageRecord, UsageTotal
from app.chat.service import ChatService
from app.chat.values import (
    ChatAnswer,
    CodeRun,
    DeliveredFile,
    ReplyContext,
    TurnEvents,
    TurnObserver,
    Upload,
    new_turn_id,
)

__all__ = [
    "ChatAnswer",
    "ChatRateLimit",
    "ChatRecords",
    "ChatService",
    "CodeRun",
    "DeliveredFile",
    "MemoryChatRecords",
    "ReplyContext",
    "Turn",
    "TurnEvents",
    "TurnLimits",
    "TurnObserver",
    "Upload",
    "UsageRecord",
    "UsageTotal",
    "model_error_message",
    "new_turn_id",
    "run_notice",
]
