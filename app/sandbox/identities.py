"""One identity per run: the uid the code of a container runs as, unique among live containers.

Without a user namespace, uid 20005 in a container is uid 20005 of the host kernel: per-uid
quotas (inotify instances, POSIX message queue bytes, pipe buffer pages, pending signals) are
shared by every container whose code runs as it. So each sandbox container, warm ones included,
gets a uid of its own from SandboxPolicy.code_uids, labelled on the container (CODE_UID_LABEL).

Uniqueness holds across every process that uses the same engine, whatever its SANDBOX_INSTANCE:
a uid is picked at random from the range (collisions are rare), the container is created with the
label, and then the engine's containers carrying the same label are listed. The container that was
created first keeps the uid; a later one is removed and another uid tried. Each container checks
after its own creation, so of two containers with one uid, the later one always sees the earlier.
The code's uid is used only once this check passed: the container's main process is the warden,
under the keeper's uid, and the runner is exec'd as the code's uid afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from app.sandbox.engine import Engine, EngineError
from app.sandbox.names import CODE_UID_LABEL
from app.sandbox.policy import SandboxPolicy

MAX_ATTEMPTS = 8


class NoFreeUid(EngineError):
    """Every uid tried was taken by an older container (the range is too small for the engine's
    load, or another program uses the same labels)."""


def created_ns(inspect: dict) -> int:
    """An engine's RFC 3339 creation time (nanoseconds) as an integer; 0 when unreadable."""
    text = str(inspect.get("Created") or "")
    whole, _, rest = text.partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())
    try:
        seconds = datetime.fromisoformat(whole.replace("Z", "") + "+00:00").timestamp()
    except ValueError:
        return 0
    return int(seconds) * 10**9 + int((fraction + "000000000")[:9])


class CodeUids:
    def __init__(self, policy: SandboxPolicy, engine: Engine, rng: random.Random | None = None):
        self.policy = policy
        self.engine = engine
        self._rng = rng or random.SystemRandom()

    def pick(self, avoid: set[int] | frozenset[int] = frozenset()) -> int:
        uids = self.policy.code_uids
        for _ in range(64):
            uid = self._rng.choice(uids)
            if uid not in avoid:
                return uid
        return self._rng.choice(uids)

    def keeps(self, container_id: str, uid: int) -> bool:
        """Whether `container_id` may run its code as `uid`: no container that carries the same
        uid was created before it."""
        holders = self.engine.containers({"label": [f"{CODE_UID_LABEL}={uid}"]})
        others = [info["Id"] for info in holders if info["Id"] != container_id]
        if not others:
            return True
        mine = (created_ns(self.engine.inspect(container_id)), container_id)
        for other in others:
            inspect = self.engine.inspect(other)
            if inspect and (created_ns(inspect), other) < mine:
                return False
        return True

    def claim(
        self, create: Callable[[int], str], discard: Callable[[str], None]
    ) -> tuple[str, int]:
        """Create a container with a uid of its own: `create(uid)` makes it (labelled with the
        uid) and returns its id; a container that loses its uid to an older one is `discard`ed and
        another uid tried. (container id, uid)."""
        tried: set[int] = set()
        for _ in range(MAX_ATTEMPTS):
            uid = self.pick(tried)
            tried.add(uid)
            container_id = create(uid)
            try:
                if self.keeps(container_id, uid):
                    return container_id, uid
            except BaseException:
                discard(container_id)
                raise
            discard(container_id)
        raise NoFreeUid(
            f"no free code uid after {MAX_ATTEMPTS} tries in {self.policy.code_uid_range}: "
            "widen SANDBOX_UID_RANGE"
        )
