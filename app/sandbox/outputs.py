"""Receiving a run's output files on the host from the collector's tar stream.

The collector inside the container already skips links, FIFOs and devices, but the folder it read
was written by untrusted code, so this side trusts nothing either: only regular-file members are
written, names are reduced to one safe path component, count and total size are capped while
reading (a lying size header cannot grow memory or disk past the cap), and every file is created
fresh with O_EXCL|O_NOFOLLOW inside the destination folder.
"""

from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from app.filenames import safe_filename, unique_name
from app.sandbox.result import OutputFile, SkippedOutput

_CHUNK = 1024 * 1024


@dataclass
class OutputReceiver:
    destination: Path
    max_files: int
    max_bytes: int
    files: list[OutputFile] = field(default_factory=list)
    skipped: list[SkippedOutput] = field(default_factory=list)
    total: int = 0
    _taken: set[str] = field(default_factory=set)

    def receive(self, stream: BinaryIO | io.RawIOBase) -> None:
        """Read a whole tar stream, writing acceptable members to `destination`."""
        self._taken = set(os.listdir(self.destination)) if self.destination.is_dir() else set()
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    self._member(tar, member)
        except tarfile.ReadError as exc:
            if self.files or "empty" not in str(exc):
                self.skipped.append(SkippedOutput("(output archive)", f"unreadable: {exc}"))
        except (tarfile.TarError, EOFError) as exc:
            self.skipped.append(SkippedOutput("(output archive)", f"cut short: {exc}"))

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        shown = safe_filename(member.name.replace("\\", "/").rsplit("/", 1)[-1])
        if member.isdir():
            return
        if not member.isreg():
            self.skipped.append(SkippedOutput(shown, "not a regular file"))
            return
        if len(self.files) >= self.max_files:
            self.skipped.append(SkippedOutput(shown, f"over the limit of {self.max_files} files"))
            return
        if member.size < 0 or self.total + member.size > self.max_bytes:
            self.skipped.append(
                SkippedOutput(shown, f"over the total size limit of {self.max_bytes} bytes")
            )
            return
        self.destination.mkdir(parents=True, exist_ok=True)
        name = unique_name(shown, self._taken)
        self._taken.add(name)
        path = self.destination / name
        source = tar.extractfile(member)
        if source is None:  # not a regular member after all
            self.skipped.append(SkippedOutput(shown, "not a regular file"))
            return
        written = 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            self.skipped.append(SkippedOutput(shown, f"could not be saved ({exc.strerror})"))
            return
        try:
            with os.fdopen(fd, "wb") as out:
                while written < member.size:
                    chunk = source.read(min(_CHUNK, member.size - written))
                    if not chunk:
                        break
                    out.write(chunk)
                    written += len(chunk)
        except BaseException:
            path.unlink(missing_ok=True)  # never leave a partial file behind
            raise
        if written != member.size:
            path.unlink(missing_ok=True)
            self.skipped.append(SkippedOutput(shown, "cut short while collecting"))
            return
        self.total += written
        self.files.append(OutputFile(name=name, size=written, path=path))
