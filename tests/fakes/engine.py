"""FakeEngine: the Engine protocol without Docker, for driving SandboxRunner in milliseconds.

Each container plays the in-container side of the real protocol over socket pairs, with docker's
multiplexed frames: the warden (the attached main process) says `ready` and answers `collect` and
`collect-if-gone` requests with the output stream; the runner exec says its ready marker, reads
the job line and then does what the test's Script says (print and end with done markers, hang
until told to stop, ignore that, die, or exit without markers). The host side (ExecStream, Warden,
OutputReceiver) is the real code. Only the sandbox is simulated: tests of isolation use real
containers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from app.sandbox.engine import STDERR, STDOUT, ExecStatus, ExecStream, ImageMissing
from app.sandbox.markers import DONE_MARKER, NONCE_LINE, READY_MARKER
from app.sandbox.names import MANAGED_LABEL, RUNNER_SCRIPT
from app.sandbox.outputs import DATA, DONE, END, FILE, STREAM_MAGIC
from tests.fakes.exec_socket import frame


@dataclass
class Script:
    """What the code does in every container of a FakeEngine."""

    stdout: bytes = b""
    stderr: bytes = b""
    status: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    runner: str = "done"
    """done: markers, then wait for the host; hang: runs until told to stop (a timeout), then
    stops the code and says done; deaf: the code stopped its runner, which never answers; die:
    the sandbox stops under the code (OOM); exit: the runner ends without markers (the code
    killed it and itself); exit-alive: the same, but the code lives on."""
    warden: str = "collect"
    """collect: collects; gone: closes without a word."""
    skipped: list = field(default_factory=list)
    """The warden's report of skipped entries."""
    late_stdout: bytes = b""
    """Written on stdout by the runner once the code is over and its stderr marker is sent, a
    moment later, before its stdout marker: output still on its way when stderr has ended."""


def output_stream(files: dict[str, bytes]) -> bytes:
    """The warden's output stream (app/sandbox/outputs.py describes the framing)."""
    parts = [STREAM_MAGIC]
    for name, data in files.items():
        encoded = name.encode()
        parts.append(FILE + struct.pack(">H", len(encoded)) + encoded)
        parts.append(DATA + struct.pack(">I", len(data)) + data)
        parts.append(DONE + b"\x01")
    parts.append(END)
    return b"".join(parts)


def _read_line(sock: socket.socket) -> bytes | None:
    line = bytearray()
    while not line.endswith(b"\n"):
        try:
            chunk = sock.recv(1)
        except OSError:  # the container was removed meanwhile
            return None
        if not chunk:
            return None
        line += chunk
    return bytes(line)


def _send(sock: socket.socket, kind: int, data: bytes) -> None:
    try:
        sock.sendall(frame(kind, data))
    except OSError:
        pass  # the host closed its end


@dataclass
class FakeContainer:
    container_id: str
    args: dict
    running: bool = True
    oom: bool = False
    code_over: threading.Event = field(default_factory=threading.Event)
    """The code is over and only the runner, named done, is left."""
    code_gone: threading.Event = field(default_factory=threading.Event)
    """No process of the code's uid is left at all."""
    created: int = 0
    sockets: list[socket.socket] = field(default_factory=list)
    deadline: float | None = None
    """The seconds the host armed the warden's own deadline with (None: never armed)."""

    @property
    def labels(self) -> dict:
        return self.args.get("labels") or {}


class FakeEngine:
    def __init__(self, script: Script | None = None, *, missing_image: bool = False) -> None:
        self.script = script or Script()
        self.missing_image = missing_image
        self.containers_made: dict[str, FakeContainer] = {}
        self.removed: list[str] = []
        self.unremoved: set[str] = set()
        self.execs: list[str] = []
        """`runner` (or `other`: never expected) for each exec, in order."""
        self.exec_users: list[str] = []
        self.exec_commands: list[list[str]] = []
        self.networks: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._exit_codes: dict[str, int] = {}

    # Engine protocol

    async def call(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    def close(self) -> None:
        for container in self.containers_made.values():
            self._close(container)

    def ping(self) -> None:
        return None

    def image_id(self, reference: str) -> str:
        return "sha256:" + "f" * 64

    def read_image_file(self, args: dict, path: str, max_bytes: int) -> bytes | None:
        return None

    def run_to_completion(self, args: dict, timeout: float) -> int | None:
        return 0

    def create_attach_start(self, args: dict) -> tuple[str, ExecStream]:
        if self.missing_image:
            raise ImageMissing(f"No such image: {args['image']}")
        number = next(self._ids)
        container = FakeContainer(f"fake{number:04d}", args, created=number)
        self.containers_made[container.container_id] = container
        ours, theirs = socket.socketpair()
        container.sockets += [ours, theirs]
        threading.Thread(target=self._warden, args=(container, theirs), daemon=True).start()
        return container.container_id, ExecStream(None, ours)

    def exec_attach(self, container_id, *, cmd, user, environment, workdir) -> ExecStream:
        container = self.containers_made[container_id]
        role = "runner" if RUNNER_SCRIPT in cmd else "other"
        self.execs.append(role)
        self.exec_users.append(user)
        self.exec_commands.append(list(cmd))
        exec_id = f"{container_id}-{role}-{len(self.execs)}"
        ours, theirs = socket.socketpair()
        container.sockets += [ours, theirs]
        target = self._runner if role == "runner" else self._other
        threading.Thread(target=target, args=(container, theirs, exec_id), daemon=True).start()
        return ExecStream(exec_id, ours)

    def exec_status(self, exec_id: str, wait: float = 2.0) -> ExecStatus:
        return ExecStatus(False, self._exit_codes.get(exec_id))

    def is_running(self, container_id: str) -> tuple[bool, bool]:
        container = self.containers_made.get(container_id)
        if container is None or container.container_id in self.removed:
            return False, False
        return container.running, container.oom

    def state(self, container_id: str) -> dict:
        running, oom = self.is_running(container_id)
        return {"Running": running, "OOMKilled": oom, "ExitCode": 137 if oom else 0}

    def inspect(self, container_id: str) -> dict:
        container = self.containers_made.get(container_id)
        if container is None or container_id in self.removed:
            return {}
        created = f"2026-01-01T00:00:00.{container.created:09d}Z"
        return {"Created": created, "Config": {"Labels": container.labels}}

    def kill(self, container_id: str) -> None:
        container = self.containers_made.get(container_id)
        if container is not None:
            container.running = False

    def remove(self, container_id: str) -> None:
        self.unremoved.discard(container_id)
        container = self.containers_made.get(container_id)
        if container is not None and container_id not in self.removed:
            self.removed.append(container_id)
            container.running = False
            self._close(container)

    def ensure_network(self, args: dict) -> None:
        self.networks[args["name"]] = args

    def containers(self, filters: dict) -> list[dict]:
        wanted = dict(
            item.split("=", 1) if "=" in item else (item, None) for item in filters.get("label", [])
        )
        found = []
        for container in self.containers_made.values():
            if container.container_id in self.removed:
                continue
            labels = container.labels
            if all(k in labels and (v is None or labels[k] == v) for k, v in wanted.items()):
                found.append({"Id": container.container_id, "Labels": labels, "Created": 0})
        return found

    # What tests look at

    def live(self) -> list[str]:
        """Containers not removed (a run must leave none)."""
        return [
            c
            for c, made in self.containers_made.items()
            if c not in self.removed and made.labels.get(MANAGED_LABEL)
        ]

    # The sandbox side

    def _close(self, container: FakeContainer) -> None:
        container.code_over.set()
        container.code_gone.set()
        for sock in container.sockets:
            try:
                sock.close()
            except OSError:
                pass

    def _warden(self, container: FakeContainer, sock: socket.socket) -> None:
        script = self.script
        _send(sock, STDERR, b"ready\n")
        while (line := _read_line(sock)) is not None:
            request = line.strip()
            if request.startswith(b"deadline "):
                container.deadline = float(request.split()[1])
                continue
            if request not in (b"collect", b"collect-if-gone"):
                continue
            if script.warden == "gone":
                sock.close()
                return
            over = container.code_over if request == b"collect" else container.code_gone
            if not over.is_set():
                _send(sock, STDERR, b"busy\n")
                continue
            status = b" %d" % script.status if request == b"collect" else b""
            _send(sock, STDERR, b"collecting" + status + b"\n")
            _send(sock, STDOUT, output_stream(script.files))
            report = {"skipped": script.skipped, "oom_kills": 0}
            _send(sock, STDERR, json.dumps(report).encode() + b"\n")

    def _runner(self, container: FakeContainer, sock: socket.socket, exec_id: str) -> None:
        script = self.script
        _send(sock, STDOUT, READY_MARKER)
        first = _read_line(sock)
        nonce = first[len(NONCE_LINE) :].strip() if first and first.startswith(NONCE_LINE) else b""
        if first is None or _read_line(sock) is None:
            return  # the host went away before handing over the code
        if script.stdout:
            _send(sock, STDOUT, script.stdout)
        if script.stderr:
            _send(sock, STDERR, script.stderr)
        status = script.status
        if script.runner in ("hang", "deaf"):
            while (command := _read_line(sock)) is not None:  # until stopped or removed
                if command.strip() == b"stop" and script.runner == "hang":
                    break
            if command is None or script.runner == "deaf":
                container.code_over.wait()
                return
            status = 137
        if script.runner == "die":
            container.running, container.oom = False, True
            container.code_over.wait()
            return
        self._exit_codes[exec_id] = status
        if script.runner in ("exit", "exit-alive"):
            if script.runner == "exit":
                container.code_gone.set()
            sock.close()
            return
        container.code_over.set()
        done = DONE_MARKER + b"%d %s\n" % (status, nonce)
        _send(sock, STDERR, done)
        if script.late_stdout:
            time.sleep(0.2)
            _send(sock, STDOUT, script.late_stdout)
        _send(sock, STDOUT, done)
        try:
            while sock.recv(1024):  # until the host closes the runner's stdin
                pass
        except OSError:
            pass
        container.code_gone.set()
        sock.close()

    def _other(self, container: FakeContainer, sock: socket.socket, exec_id: str) -> None:
        sock.close()  # nothing but the runner is ever exec'd: tests assert on `execs`
