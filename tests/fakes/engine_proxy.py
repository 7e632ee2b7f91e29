"""EngineProxy: the real Docker engine behind a Unix socket the test can cut and restore.

What a process on the other side sees of `cut()` is what it sees of an engine restart: every
connection drops at once (API calls fail with the SDK's ConnectionError, attach and exec
streams end) and nothing answers until `restore()`. The engine itself, shared with others,
is never touched; the containers stay its own, and end by themselves when their attach drops.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
from pathlib import Path

# The engine the suite uses: DOCKER_HOST's socket (a private engine) or the default one.
_HOST = os.environ.get("DOCKER_HOST", "")
UPSTREAM = _HOST.removeprefix("unix://") if _HOST.startswith("unix://") else "/var/run/docker.sock"


class EngineProxy:
    def __init__(self, path: Path, upstream: str = UPSTREAM) -> None:
        self.path = path
        self.upstream = upstream
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def start(self) -> EngineProxy:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    restore = start

    def cut(self) -> None:
        """Drop every connection and stop answering (the engine "restarts")."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        for sock in [listener, *connections]:
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.path.unlink(missing_ok=True)

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._connections |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        open_ends = 2
        try:
            while open_ends:
                for key, _ in selector.select():
                    source, target = key.fileobj, key.data
                    try:
                        data = source.recv(65536)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if data:
                        try:
                            target.sendall(data)
                        except OSError:
                            return
                        continue
                    # One side finished writing: pass the half-close on, as a socket would.
                    selector.unregister(source)
                    open_ends -= 1
                    try:
                        target.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
        except (OSError, ValueError):
            pass
        finally:
            selector.close()
            for sock in (a, b):
                with self._lock:
                    self._connections.discard(sock)
                try:
                    sock.close()
                except OSError:
                    pass


def proxied_environment(proxy: EngineProxy) -> dict[str, str]:
    """The environment of a process that should reach the engine through `proxy`."""
    return {**os.environ, "DOCKER_HOST": proxy.url}
