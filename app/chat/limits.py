"""What one chat turn may cost: code runs, sandbox seconds and upload bytes.

The model decides how many tool calls it makes, and one reply may hold many parallel calls; the
rounds alone do not bound that. So every call counts, one by one: past CHAT_MAX_TOOL_CALLS, or
once CHAT_MAX_SANDBOX_SECONDS of run time are spent, a call gets an "over the limit" result
instead of a sandbox, and the timeout of each run is cut to what is left. Uploads of one message
are capped in total (CHAT_MAX_UPLOAD_MB) before they are stored or shown to a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.sizes import human_size

# Below this a run is not worth starting: the budget is spent.
MIN_RUN_SECONDS = 1.0


@dataclass(frozen=True)
class TurnLimits:
    max_tool_calls: int = 10
    max_sandbox_seconds: float = 600.0
    max_upload_bytes: int = 100 * 1024**2

    def describe(self) -> str:
        """The limits in the words the model reads in the tool's description."""
        return (
            f"One message allows at most {self.max_tool_calls} runs and "
            f"{self.max_sandbox_seconds:g} s of run time in all; calls past that are refused."
        )


@dataclass
class TurnBudget:
    limits: TurnLimits
    calls: int = 0
    sandbox_seconds: float = 0.0
    upload_bytes: int = 0

    def refuse_call(self) -> str:
        """Why the next tool call may not run ("" when it may), counting it either way."""
        self.calls += 1
        if self.calls > self.limits.max_tool_calls:
            return (
                f"over the limit: one message allows at most {self.limits.max_tool_calls} code "
                "runs; answer with what you have, or ask the user to send another message"
            )
        if self.seconds_left() < MIN_RUN_SECONDS:
            return (
                f"over the limit: the {self.limits.max_sandbox_seconds:g} s of run time of one "
                "message are used up; answer with what you have"
            )
        return ""

    def seconds_left(self) -> float:
        return self.limits.max_sandbox_seconds - self.sandbox_seconds

    def timeout_for(self, requested: float | None, max_timeout: float) -> float:
        """The run's timeout: what was asked (or the maximum), never more than is left."""
        return min(requested or max_timeout, max_timeout, self.seconds_left())

    def refuse_upload(self, size: int) -> str:
        """Why an upload of `size` bytes may not be taken ("" when it may; then it is counted)."""
        if self.upload_bytes + size > self.limits.max_upload_bytes:
            total = human_size(self.limits.max_upload_bytes)
            return f"not stored: the files of one message may total at most {total}."
        self.upload_bytes += size
        return ""
