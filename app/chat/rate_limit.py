"""ChatRateLimit: at most N turns per user in any sliding minute."""

from __future__ import annotations

import time
from collections import deque


class ChatRateLimit:
    """At most `per_minute` turns per user in any sliding minute."""

    def __init__(self, per_minute: int, clock=time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def check(self, user_id: str) -> float:
        """0 when the user may go ahead (and counts it), else seconds to wait."""
        now = self.clock()
        seen = self._seen.setdefault(user_id, deque())
        while seen and now - seen[0] >= 60:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return 60 - (now - seen[0])
        seen.append(now)
        return 0.0
