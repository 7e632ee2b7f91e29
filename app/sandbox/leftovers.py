"""Leftover containers: which of this instance's containers no live run owns, and their removal.

Every container carries its creator's owner token (host, pid and process start time, so a reused
pid is not mistaken for the creator). A container is a leftover when its removal failed (the
engine was away: `Engine.unremoved`, retried as soon as the engine answers), when its owner
process is known to be gone, when it has no owner, when it is older than any run can be, or when
it has been stopped, or created and never started, for a while (STOPPED_GRACE): a sandbox ends by
itself when its controller goes away or its deadline passes, and a live owner removes its own
stopped sandbox within moments. Containers of another host
or container are judged by age only: their owner's liveness cannot be seen from here.

The sandbox service (`python -m app sandboxd`) marks its token `sandboxd@`: there is one service
per engine and instance, so to a service every container of another service's token is a
leftover, even from another container (a recreated service container has a new hostname). Its
runs are never taken for leftovers by the in-process tools, which judge them by age.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime

import structlog

from app.sandbox.engine import Engine, EngineError, EngineUnavailable
from app.sandbox.names import OWNER_LABEL
from app.sandbox.policy import SandboxPolicy

log = structlog.get_logger(__name__)


def _process_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


SERVICE_MARK = "sandboxd@"
# A stopped sandbox is a leftover after this long, whoever made it.
STOPPED_GRACE = 60.0


def owner_token(service: bool = False) -> str:
    """This process's token, labelled on every container it creates; `service` for sandboxd."""
    pid = os.getpid()
    token = f"{socket.gethostname()}:{pid}:{_process_start(pid) or 0}"
    return SERVICE_MARK + token if service else token


def owner_is_dead(token: str, me: str = "") -> bool:
    """True when the process that created a container is known to be gone; `me` is the asking
    process's own token."""
    if token.startswith(SERVICE_MARK) and me.startswith(SERVICE_MARK):
        return token != me  # a service's containers outlive it only as leftovers
    host, _, rest = token.removeprefix(SERVICE_MARK).partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another host or container: its liveness cannot be seen from here
    return _process_start(int(pid_text)) != start


class LeftoverReaper:
    def __init__(self, policy: SandboxPolicy, engine: Engine, max_age: float) -> None:
        self.policy = policy
        self.engine = engine
        self.max_age = max_age
        """Past this age a container is a leftover whoever made it: no run lives that long."""

    @property
    def unremoved(self) -> set[str]:
        """Containers whose removal failed (the engine was away): the next reaping's."""
        return self.engine.unremoved

    async def reap(self) -> int:
        """Remove the leftovers now; 0 (logged) when the engine cannot be asked."""
        try:
            return await self.engine.call(self._reap_blocking)
        except (EngineUnavailable, EngineError) as exc:
            log.warning("leftover reaping skipped", error=str(exc)[:200])
            return 0

    async def count(self) -> int:
        """How many containers `reap` would remove now (for dry runs)."""
        try:
            return len(await self.engine.call(self.leftover_ids))
        except (EngineUnavailable, EngineError) as exc:
            log.warning("leftover count skipped", error=str(exc)[:200])
            return 0

    def leftover_ids(self) -> list[str]:
        return [info["Id"] for info in self._leftovers()]

    def _leftovers(self) -> list[dict]:
        """The listed containers that are leftovers (see the module doc)."""
        now = time.time()
        found = []
        every = self.engine.containers(self.policy.ownership_filter())
        keys = {info["Id"]: {info["Id"], *_names(info)} for info in every}
        self.unremoved.intersection_update(set().union(*keys.values()))  # others are gone
        for info in every:
            if keys[info["Id"]] & self.unremoved:
                found.append(info)
                continue
            owner = (info.get("Labels") or {}).get(OWNER_LABEL, "")
            too_old = now - info.get("Created", now) > self.max_age
            gone = not owner or owner_is_dead(owner, self.policy.owner)
            if too_old or gone or self._stopped_long_ago(info, now):
                found.append(info)
        return found

    def _stopped_long_ago(self, info: dict, now: float) -> bool:
        """A container that ended, or was created and never started, more than STOPPED_GRACE
        ago (every path starts what it creates at once; one whose start failed as the engine went
        away may never have had its id returned)."""
        if info.get("State") == "created":
            return now - info.get("Created", now) > STOPPED_GRACE
        if info.get("State") not in ("exited", "dead"):
            return False
        finished = str(self.engine.state(info["Id"]).get("FinishedAt") or "")
        try:  # nanoseconds in the engine's RFC 3339: keep what fromisoformat reads
            stamp = datetime.fromisoformat(finished[:26].rstrip("Z") + "+00:00")
        except ValueError:
            return False
        return now - stamp.timestamp() > STOPPED_GRACE

    def _reap_blocking(self) -> int:
        removed = 0
        for info in self._leftovers():
            self.engine.remove(info["Id"])
            self.unremoved.difference_update({info["Id"], *_names(info)})
            removed += 1
        if removed:
            log.info("reaped leftover sandbox containers", count=removed)
        return removed


def _names(info: dict) -> set[str]:
    """A listed container's names, without the engine's leading slash."""
    return {name.lstrip("/") for name in info.get("Names") or ()}
