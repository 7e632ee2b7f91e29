"""A MongoDB that goes away: mongomock-motor behind a switch, failing as the driver does.

`Outage.database(name)` is a motor database whose collections and commands raise what pymongo
raises when the server is gone (ServerSelectionTimeoutError by default, AutoReconnect when a
connection drops mid-operation) while the outage is on. The repositories under test are the
real ones (app/files/mongo.py, app/chat/mongo.py); only the server is simulated, since none can
be installed here.
"""

from __future__ import annotations

from typing import Any

from mongomock_motor import AsyncMongoMockClient
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError


class Outage:
    def __init__(self, error: type[PyMongoError] = ServerSelectionTimeoutError) -> None:
        self.client = AsyncMongoMockClient(tz_aware=True)
        self.error = error
        self.down = False
        self.refused = 0
        """How many operations failed because of the outage."""

    def start(self, error: type[PyMongoError] | None = None) -> None:
        self.error = error or self.error
        self.down = True

    def end(self) -> None:
        self.down = False

    def database(self, name: str = "codeinterp") -> _Database:
        return _Database(self.client[name], self)

    def check(self) -> None:
        if self.down:
            self.refused += 1
            raise self.error("localhost:27017: [Errno 111] Connection refused (simulated outage)")


class _Switched:
    """Every call of the wrapped object first asks the outage."""

    def __init__(self, target: Any, outage: Outage) -> None:
        self._target = target
        self._outage = outage

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._outage.check()
            return attr(*args, **kwargs)

        return call


class _Database(_Switched):
    def __getitem__(self, name: str) -> _Switched:
        return _Switched(self._target[name], self._outage)
