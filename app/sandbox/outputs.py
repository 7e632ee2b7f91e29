"""Receiving a run's output files on the host from the warden's output stream.

The stream is the project's own framing, not tar: the host's Python (3.11.7 on the machines here)
parses tar pax headers in quadratic time with the GIL held (CVE-2024-6232), and a tar reader
accepts member types that mean nothing here. The warden (sandbox-image/runtime/sandbox_collect.py)
writes, after a magic string, for each regular file:

    F <name length: u16> <name>      a file starts (its path in the output folder, UTF-8)
    D <length: u32> <bytes>          its data, in chunks of at most MAX_CHUNK bytes
    Z <1 | 0>                        it is complete, or it changed and must be dropped

With a session's state, the state folder's two files follow as `S <name length> <name>` (then D
and Z as for a file): `notes` and `state`, each at most once, written to the run's state folder
instead of the outputs (never an attachment) with their own caps. E ends the stream.

Every length is bounded before anything is allocated, the count of files and their total size
are capped while reading, and anything outside the format ends the stream (what arrived whole is
kept). The warden runs as another uid than the code and applies the same caps,
so a stream that breaks them did not come from it. The folder it read was written by the code,
so names are still reduced to one safe component here, and every file is created fresh with
O_EXCL|O_NOFOLLOW inside the destination folder.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from app.filenames import safe_filename, unique_name
from app.sandbox.result import OutputFile, SkippedOutput

# The framing; sandbox-image/runtime/sandbox_collect.py writes it (tests/unit/test_outputs.py
# compares the constants of both sides).
STREAM_MAGIC = b"CIOUT1\n"
FILE, DATA, DONE, END = b"F", b"D", b"Z", b"E"
STATE = b"S"
STATE_FILES = ("notes", "state")
MAX_NOTES_BYTES = 64 * 1024
MAX_NAME_BYTES = 2048
MAX_CHUNK = 1024 * 1024
MAX_SKIPPED = 20
STREAM = "(output stream)"


class StreamBroken(Exception):
    """The stream left the format or its limits: stop reading it."""


def _exact(stream: BinaryIO | io.RawIOBase, n: int) -> bytes:
    """Exactly `n` bytes (n is always bounded by the caller), or StreamBroken at EOF."""
    parts = bytearray()
    while len(parts) < n:
        chunk = stream.read(n - len(parts))
        if not chunk:
            raise StreamBroken("cut short")
        parts += chunk
    return bytes(parts)


# Why _copy kept no file.
CHANGED, FULL = "changed", "full"


@dataclass
class OutputReceiver:
    destination: Path
    max_files: int
    max_bytes: int
    files: list[OutputFile] = field(default_factory=list)
    skipped: list[SkippedOutput] = field(default_factory=list)
    total: int = 0
    state_destination: Path | None = None
    """Where the session's state files go (None: the run keeps no state; S records break)."""
    state_max_bytes: int = 0
    state_files: dict[str, Path] = field(default_factory=dict)
    _taken: set[str] = field(default_factory=set)

    def receive(self, stream: BinaryIO | io.RawIOBase) -> None:
        """Read a whole output stream, writing its files to `destination`."""
        self._taken = set(os.listdir(self.destination)) if self.destination.is_dir() else set()
        head = stream.read(len(STREAM_MAGIC))
        if not head:
            self.skip(STREAM, "nothing arrived")
            return
        try:
            if head + _exact(stream, len(STREAM_MAGIC) - len(head)) != STREAM_MAGIC:
                raise StreamBroken("not an output stream")
            while (kind := _exact(stream, 1)) != END:
                if kind not in (FILE, STATE):
                    raise StreamBroken(f"unexpected record {kind!r}")
                (length,) = struct.unpack(">H", _exact(stream, 2))
                if length > MAX_NAME_BYTES:
                    raise StreamBroken("a name longer than any path in the folder")
                name = _exact(stream, length).decode("utf-8", "surrogateescape")
                if kind == STATE:
                    self._state_file(stream, name)
                else:
                    self._file(stream, name)
        except StreamBroken as exc:
            self.skip(STREAM, f"unreadable: {exc}")

    def skip(self, name: str, reason: str) -> None:
        if len(self.skipped) < MAX_SKIPPED:
            self.skipped.append(SkippedOutput(name, reason))

    def _state_file(self, stream: BinaryIO | io.RawIOBase, name: str) -> None:
        if self.state_destination is None or name not in STATE_FILES or name in self.state_files:
            raise StreamBroken("an unexpected state file")
        cap = self.state_max_bytes if name == "state" else MAX_NOTES_BYTES
        self.state_destination.mkdir(parents=True, exist_ok=True)
        path = self.state_destination / name
        try:
            # Readable by the next sandbox's code uid, as the users' files are.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError:
            fd = -1  # read past it: the run keeps the state it had
        if isinstance(self._copy(stream, fd, path, cap, counted=False), int) and fd >= 0:
            self.state_files[name] = path

    def _copy(
        self, stream: BinaryIO | io.RawIOBase, fd: int, path: Path, cap: int, *, counted: bool
    ) -> int | str:
        """Data records into `fd` (-1: read and drop) up to `cap` bytes: the size, or why the
        file is not kept (CHANGED while it was read, or the disk was FULL), and then it is
        removed. A full disk does not end the stream: the rest is read and dropped."""
        written = 0
        refused = False
        try:
            while (kind := _exact(stream, 1)) == DATA:
                (length,) = struct.unpack(">I", _exact(stream, 4))
                if length > MAX_CHUNK:
                    raise StreamBroken("a chunk larger than the warden sends")
                if (self.total if counted else 0) + written + length > cap:
                    raise StreamBroken(f"more than {cap} bytes")
                chunk = _exact(stream, length)
                written += length
                if fd >= 0 and not refused and not _wrote(fd, chunk):
                    refused = True
            if kind != DONE:
                raise StreamBroken(f"unexpected record {kind!r}")
            complete = _exact(stream, 1) == b"\x01"
        except BaseException:
            if fd >= 0:
                os.close(fd)
                path.unlink(missing_ok=True)  # never leave a partial file behind
            raise
        if fd < 0:
            return written
        os.close(fd)
        if refused or not complete:
            path.unlink(missing_ok=True)
            return FULL if refused else CHANGED
        return written

    def _file(self, stream: BinaryIO | io.RawIOBase, name: str) -> None:
        shown = safe_filename(name.replace("\\", "/").rsplit("/", 1)[-1])
        if len(self.files) >= self.max_files:
            raise StreamBroken(f"more than {self.max_files} files")
        self.destination.mkdir(parents=True, exist_ok=True)
        saved = unique_name(shown, self._taken)
        path = self.destination / saved
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            fd = -1
            self.skip(shown, f"could not be saved ({exc.strerror})")
        written = self._copy(stream, fd, path, self.max_bytes, counted=True)
        if fd < 0:
            return
        if written == FULL:
            self.skip(shown, "could not be saved (the disk is full)")
            return
        if not isinstance(written, int):
            self.skip(shown, "changed while collecting")
            return
        self._taken.add(saved)
        self.total += written
        self.files.append(OutputFile(name=saved, size=written, path=path))


def _wrote(fd: int, data: bytes) -> bool:
    """Write all of `data`; False when the disk refused it (full, or over a quota)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        return False
    return True
