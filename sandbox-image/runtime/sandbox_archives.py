"""What load_file reads (a Source), and what is inside compressed files and archives.

A Source is a user's file, the data a compressed file holds, or a member of a zip or tar archive.
Readers open() it as a binary stream, or ask path() for a file on disk: data that is not on disk
is then written to /tmp, within what the run's memory and /tmp can hold (/tmp is a tmpfs: what
is written there counts as memory).
"""

from __future__ import annotations

import io
import os

import sandbox_detect

# Compressed single files: kind -> (name suffixes and what each becomes).
_SUFFIXES = {
    "gzip": ((".tgz", ".tar"), (".gz", ""), (".gzip", ""), (".z", "")),
    "bzip2": ((".tbz2", ".tar"), (".tbz", ".tar"), (".bz2", ""), (".bz", "")),
    "xz": ((".txz", ".tar"), (".xz", "")),
    "lzma": ((".lzma", ""),),
    "zstd": ((".tzst", ".tar"), (".zst", ""), (".zstd", "")),
    "lz4": ((".lz4", ""),),
}
COMPRESSED = frozenset(_SUFFIXES)
MAX_MEMBERS = 64
_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")
_COPY_CHUNK = 1 << 20


class TooLarge(Exception):
    """Data would need more memory (or /tmp) than the run has left."""


class Source:
    """One thing to read: a user's file, the data inside a compressed file, or an archive member."""

    def __init__(
        self,
        entry,
        name: str,
        given: str | None,
        *,
        path: str | None = None,
        opener=None,
        size: int | None = None,
        within: Source | None = None,
        how: str = "",
    ):
        self.entry = entry  # the user's file: its name and id for messages
        self.name = name  # the name the type is guessed from (a member's, the inner file's)
        self.given = given  # the type its name (or the host) says
        self.disk_path = path
        self.opener = opener
        self.size = size  # bytes, uncompressed; None while unknown
        self.within = within
        self.how = how  # "gzip-compressed", "member of the zip archive"...
        self.type = given  # the type it is read as, set by the dispatcher
        self.by_content = False
        self.keep = False  # the result reads the file later (h5py.File, sqlite3): keep a copy
        self.listed = False  # one of several members loaded into {name: object}
        self._head: bytes | None = None
        self._temp: str | None = None

    @property
    def label(self) -> str:
        """How messages name it: 'data.csv.gz', or 'bundle.zip' member 'a/b.csv'."""
        if self.within is None:
            return repr(self.entry.name)
        if self.how.startswith("member"):
            return f"{self.within.label} member {self.name!r}"
        return self.within.label

    @property
    def depth(self) -> int:
        return 0 if self.within is None else self.within.depth + 1

    def open(self):
        if self.disk_path is not None:
            return open(self.disk_path, "rb")
        return self.opener()

    def head(self) -> bytes:
        if self._head is None:
            with self.open() as fh:
                self._head = _read_up_to(fh, sandbox_detect.HEAD_BYTES)
        return self._head

    def tail(self) -> bytes:
        if self.disk_path is None:
            return b""
        with open(self.disk_path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - sandbox_detect.TAIL_BYTES))
            return fh.read()

    def path(self) -> str:
        """A file on disk with this data: the user's file itself, or a copy in /tmp."""
        if self.disk_path is not None:
            return self.disk_path
        if self._temp is None:
            import shutil
            import tempfile

            folder = tempfile.mkdtemp(prefix="load_file-")
            target = os.path.join(folder, _safe_name(self.name))
            room = _room_in_tmp()
            try:
                with self.open() as src, open(target, "wb") as dst:
                    copied = 0
                    while True:
                        chunk = src.read(_COPY_CHUNK)
                        if not chunk:
                            break
                        copied += len(chunk)
                        if room is not None and copied > room:
                            raise TooLarge(
                                f"more than the {human(room)} /tmp and memory have "
                                "left to unpack it into"
                            )
                        dst.write(chunk)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self.size = copied
            self._temp = target
        return self._temp

    def cleanup(self) -> None:
        if self._temp is not None and not self.keep:
            import shutil

            shutil.rmtree(os.path.dirname(self._temp), ignore_errors=True)
            self._temp = None

    def measure(self, limit: int | None) -> int:
        """The size of the data, read to its end (compressed data declares none it must keep),
        stopping with TooLarge past `limit`."""
        if self.size is not None and self.disk_path is not None:
            return self.size
        total = 0
        with self.open() as fh:
            while True:
                chunk = fh.read(_COPY_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if limit is not None and total > limit:
                    raise TooLarge(f"it unpacks to more than {human(limit)}")
        self.size = total
        return total


def _read_up_to(fh, size: int) -> bytes:
    parts, left = [], size
    while left > 0:
        chunk = fh.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")) or "data"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[-120:]


def _room_in_tmp() -> int | None:
    import tempfile

    free, _ = sandbox_detect.memory_budget()
    try:
        stats = os.statvfs(tempfile.gettempdir())
        disk = stats.f_bavail * stats.f_frsize
    except OSError:
        disk = None
    known = [x for x in (free, disk) if x is not None]
    return min(known) if known else None


def human(size: int | float) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


# Compressed single files


def inner_name(name: str, kind: str, head: bytes) -> str:
    """The name of what a compressed file holds: data.csv.gz -> data.csv, x.tgz -> x.tar; the
    name the gzip header recorded when the outer name tells nothing."""
    lower = name.lower()
    for suffix, replacement in _SUFFIXES.get(kind, ()):
        if lower.endswith(suffix):
            inner = name[: -len(suffix)] + replacement
            if sandbox_detect.type_for_name(inner) is None and kind == "gzip":
                recorded = sandbox_detect.gzip_original_name(head)
                if recorded:
                    return recorded
            return inner
    return name


def decompressed(source: Source, kind: str) -> Source:
    """The data a gzip, bzip2, xz, lzma, zstd or lz4 file holds, as a Source of its own."""
    name = inner_name(source.name, kind, source.head())

    def opener():
        return _decompressing(source.open(), kind)

    return Source(
        source.entry,
        name,
        sandbox_detect.type_for_name(name),
        opener=opener,
        within=source,
        how=f"{kind}-compressed",
    )


def _decompressing(raw, kind: str):
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        import bz2

        return bz2.BZ2File(raw, "rb")
    if kind in ("xz", "lzma"):
        import lzma

        return lzma.LZMAFile(raw, "rb")
    # zstd and lz4 frames: pyarrow has both codecs (the standard library has neither in 3.11).
    import pyarrow

    codec = {"zstd": "zstd", "lz4": "lz4"}[kind]
    if not pyarrow.Codec.is_available(codec):
        raise ModuleNotFoundError(f"pyarrow has no {codec} codec")
    stream = pyarrow.CompressedInputStream(pyarrow.PythonFile(raw, mode="r"), codec)
    return io.BufferedReader(_RawArrow(stream, raw), buffer_size=_COPY_CHUNK)


class _RawArrow(io.RawIOBase):
    def __init__(self, stream, raw):
        self._stream, self._raw = stream, raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._raw.close()
        super().close()


# Archives: zip and tar


def zip_kind(path: str) -> str:
    """Which format a zip file is (xlsx, docx, ods, npz...), from its member names; 'zip' for a
    plain archive of files."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            lower = {n.lower() for n in names}
            if "[content_types].xml" in lower:
                if any(n.startswith("xl/workbook.bin") for n in lower):
                    return "xlsb"
                if any(n.startswith("xl/") for n in lower):
                    return "xlsx"
                if any(n.startswith("word/") for n in lower):
                    return "docx"
                if any(n.startswith("ppt/") for n in lower):
                    return "pptx"
            if "mimetype" in lower:
                mime = archive.read(next(n for n in names if n.lower() == "mimetype"))[:100]
                for marker, kind in (
                    (b"opendocument.spreadsheet", "ods"),
                    (b"opendocument.text", "odt"),
                    (b"opendocument.presentation", "odp"),
                    (b"epub", "epub"),
                ):
                    if marker in mime:
                        return kind
            files = [n for n in names if not n.endswith("/")]
            if files and all(n.lower().endswith(".npy") for n in files):
                return "npz"
            if any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
                return "pt"
            if "doc.kml" in lower:
                return "kmz"
    except (zipfile.BadZipFile, OSError, StopIteration, KeyError):
        return "zip"
    return "zip"


def members(source: Source, password: bytes | None = None) -> list[Source]:
    """The files a zip or tar archive holds, as Sources (directories and system clutter such as
    __MACOSX left out; a tar's listing stops well past MAX_MEMBERS)."""
    path = source.path()
    kind = source.type
    found: list[Source] = []
    if kind == "zip":
        import zipfile

        archive = zipfile.ZipFile(path)
        for info in archive.infolist():
            if info.is_dir() or _is_junk(info.filename):
                continue
            if info.flag_bits & 0x1 and password is None:
                found.append(_encrypted(source, info.filename, info.file_size))
                continue
            found.append(
                Source(
                    source.entry,
                    info.filename,
                    sandbox_detect.type_for_name(info.filename),
                    opener=_zip_opener(path, info.filename, password),
                    size=info.file_size,
                    within=source,
                    how="member of the zip archive",
                )
            )
    else:
        import tarfile

        with tarfile.open(path, "r:*") as archive:
            for info in archive:
                if not info.isfile() or _is_junk(info.name):
                    continue
                found.append(
                    Source(
                        source.entry,
                        info.name,
                        sandbox_detect.type_for_name(info.name),
                        opener=_tar_opener(path, info.name),
                        size=info.size,
                        within=source,
                        how="member of the tar archive",
                    )
                )
                if len(found) > 10 * MAX_MEMBERS:
                    break  # enough to say there are too many
    return found


def _is_junk(name: str) -> bool:
    base = os.path.basename(name.rstrip("/"))
    return (
        name.startswith("__MACOSX/")
        or "/__MACOSX/" in name
        or base in _JUNK
        or base.startswith("._")
    )


def _zip_opener(path: str, name: str, password: bytes | None = None):
    def opener():
        import zipfile

        archive = zipfile.ZipFile(path)
        try:
            return archive.open(name, pwd=password)
        finally:
            archive.close()  # the member stream keeps the file open until it is closed

    return opener


def _tar_opener(path: str, name: str):
    def opener():
        import tarfile

        archive = tarfile.open(path, "r:*")
        member = archive.extractfile(name)
        if member is None:
            raise OSError(f"{name} is not a regular file")
        return _Closing(member, archive)

    return opener


class _Closing(io.BufferedReader):
    """A tar member's stream that closes its archive too."""

    def __init__(self, member, archive):
        super().__init__(member, buffer_size=_COPY_CHUNK)
        self._archive = archive

    def close(self) -> None:
        super().close()
        self._archive.close()


def _encrypted(source: Source, name: str, size: int) -> Source:
    def opener():
        raise PermissionError("it is encrypted (password-protected)")

    return Source(
        source.entry,
        name,
        "encrypted",
        opener=opener,
        size=size,
        within=source,
        how="member of the zip archive",
    )
