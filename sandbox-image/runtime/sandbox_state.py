"""A session's state inside the sandbox: the namespace's top-level names, saved after a run and
restored before the next one of the same session.

Made and read only here, in the run's child, as the code's uid: the host never deserializes a
snapshot, it only carries the file from one sandbox of a session to the next (the warden collects
it from the state folder with the outputs; the next run gets it as a read-only file). So a
hostile snapshot can do no more than the session's own code could: it runs in that session's
sandbox, with its limits.

The file is our own framing around one cloudpickle per name, so one name that cannot be loaded
costs only that name:

    MAGIC <header length: u32> <header: JSON {"fingerprint", "names": [[name, length], ...]}>
    <each name's pickle, in the header's order>

Functions and classes the code defined are pickled by value (cloudpickle does that for
`__main__`), modules by reference (a re-import). Names that cannot be pickled (files,
connections, generators, locks, sockets...) are named with their type in the notes the model
reads. Both steps have their own time bound (an alarm here; the host has its own backstop).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import sys
import types

MAGIC = b"CISTATE1\n"
STATE_FILE = "state"
NOTES_FILE = "notes"
MAX_NOTES = 40
MAX_NOTE_CHARS = 300
MAX_HEADER = 16 * 1024 * 1024
# The file holds the names' pickles (capped at max_bytes) and a header beside them.
HEADER_ROOM = 4 * 1024 * 1024
MODULE_LIST = "/opt/sandbox/image-modules.json"
UNREADABLE = "state not restored: the saved state is unreadable; the session starts empty"


class Overtime(BaseException):
    """The step's time is up (BaseException: the code's own `except Exception` cannot keep it)."""


def fingerprint() -> str:
    """The image a snapshot was made by: Python's version and the image's module list."""
    digest = hashlib.sha256(sys.version.encode())
    try:
        with open(MODULE_LIST, "rb") as fh:
            digest.update(fh.read())
    except OSError:
        pass
    return digest.hexdigest()[:32]


def type_name(value: object) -> str:
    kind = type(value)
    module = kind.__module__
    if module in ("builtins", "__main__"):
        return kind.__qualname__
    return f"{module.split('.')[0]}.{kind.__qualname__}" if module else kind.__qualname__


def size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class _Alarm:
    """Raise Overtime in this thread after `seconds` (then the previous handler is back)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.previous = None

    def __enter__(self) -> None:
        def expire(*_):
            raise Overtime()

        self.previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, max(self.seconds, 0.001))

    def __exit__(self, *exc) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous or signal.SIG_DFL)


def restore(path: str, namespace: dict, max_bytes: int, seconds: float) -> list[str]:
    """Load the names of the snapshot at `path` into `namespace`; the notes for the model. A
    snapshot that cannot be read leaves the namespace as it was (empty of saved names)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return []  # a new session
    if size > max_bytes + HEADER_ROOM:
        return [
            f"state not restored: the saved state ({size_text(size)}) is over the limit of "
            f"{size_text(max_bytes)}; the session starts empty"
        ]
    import cloudpickle  # noqa: F401 - loaded before the alarm: its import is not the snapshot's

    loaded: dict = {}
    notes: list[str] = []
    try:
        with _Alarm(seconds), open(path, "rb") as fh:
            entries = _read(fh, size)
            if entries is None:
                return [UNREADABLE]
            mark, items = entries
            if mark != fingerprint():
                return [
                    "state not restored: it was saved by another sandbox image; the "
                    "session starts empty"
                ]
            blobs = dict(items)
            loader = _Loader(blobs, namespace)
            for name in blobs:
                try:
                    loader.load(name)
                except Overtime:
                    raise
                except BaseException as exc:  # the snapshot is the code's: anything goes
                    notes.append(f"not restored: {name} ({_reason(exc)})")
            loaded = loader.loaded
    except Overtime:
        return [
            f"state not restored: restoring took longer than {seconds:g} seconds; the session "
            "starts empty"
        ]
    except (OSError, MemoryError) as exc:
        return [f"state not restored: {type(exc).__name__}; the session starts empty"]
    namespace.update(loaded)
    return notes


def _read(fh, size: int):
    """(fingerprint, [(name, pickle bytes)]) or None when the file is not a snapshot."""
    if fh.read(len(MAGIC)) != MAGIC:
        return None
    raw = fh.read(4)
    if len(raw) != 4:
        return None
    (length,) = struct.unpack(">I", raw)
    if length > min(MAX_HEADER, size):
        return None
    try:
        header = json.loads(fh.read(length))
        names = [(str(name), int(n)) for name, n in header["names"]]
        mark = str(header["fingerprint"])
    except (ValueError, KeyError, TypeError):
        return None
    if sum(n for _, n in names) > size or any(n < 0 for _, n in names):
        return None
    items = []
    for name, n in names:
        blob = fh.read(n)
        if len(blob) != n:
            return None
        items.append((name, blob))
    return mark, items


def save(namespace: dict, folder: str, max_bytes: int, seconds: float, skip: dict) -> list[str]:
    """Write the picklable top-level names of `namespace` to `folder`/state; the notes. Names in
    `skip` (the helpers the runner put there, by identity) and dunder names are not saved. Over
    `max_bytes`, the largest names are dropped and named."""
    notes: list[str] = []
    blobs: list[tuple[str, bytes]] = []
    try:
        with _Alarm(seconds):
            kept = {
                name: value
                for name, value in namespace.items()
                if not name.startswith("__") and skip.get(name, _MISSING) is not value
            }
            shared = {id(value): name for name, value in kept.items() if _shareable(value)}
            for name, value in kept.items():
                try:
                    if isinstance(value, types.ModuleType) and value.__name__ not in sys.modules:
                        raise TypeError("a module that cannot be imported again")
                    blobs.append((name, _dumps(value, namespace, shared)))
                except Overtime:
                    raise
                except BaseException:  # whatever the value's own pickling raised
                    notes.append(f"not kept: {name} ({type_name(value)})")
            total = sum(len(blob) for _, blob in blobs)
            if total > max_bytes:
                for name, blob in sorted(blobs, key=lambda item: -len(item[1])):
                    if total <= max_bytes:
                        break
                    blobs.remove((name, blob))
                    total -= len(blob)
                    notes.append(
                        f"not kept: {name} ({type_name(namespace.get(name))}, "
                        f"{size_text(len(blob))}): the session's state is limited to "
                        f"{size_text(max_bytes)}"
                    )
            _write(folder, blobs)
    except Overtime:
        _discard(folder)
        return notes + [
            f"state not saved: saving took longer than {seconds:g} seconds; the next run starts "
            "from the state before this run"
        ]
    except (OSError, MemoryError) as exc:
        _discard(folder)
        return notes + [
            f"state not saved ({type(exc).__name__}); the next run starts from the state before "
            "this run"
        ]
    return notes


_MISSING = object()
# Stands for the namespace itself: the functions the code defined get the next run's namespace as
# their globals, as in a kernel (not a copy of the names they used when saved).
_NAMESPACE = "namespace"
_NAME = "name:"


def _shareable(value: object) -> bool:
    """Values saved once and referred to by name from the other names' pickles (so a class stays
    the class of its instances, and a frame a function refers to is not saved twice)."""
    return not isinstance(value, (int, float, complex, str, bytes, bool, tuple, type(None)))


def _dumps(value: object, namespace: dict, shared: dict) -> bytes:
    import io

    import cloudpickle

    class StatePickler(cloudpickle.Pickler):
        def persistent_id(self, obj):
            if obj is namespace:
                return _NAMESPACE
            name = shared.get(id(obj))
            if name is not None and obj is not value and obj is namespace.get(name):
                return _NAME + name
            return None

        def _dynamic_function_reduce(self, func):
            reduced = super()._dynamic_function_reduce(func)
            if func.__globals__ is not namespace:
                return reduced
            make, newargs, (state, slots), *rest = reduced
            newargs = (newargs[0], namespace, *newargs[2:])  # persistent: the next namespace
            return (make, newargs, (state, {**slots, "__globals__": {}}), *rest)

    buffer = io.BytesIO()
    StatePickler(buffer, protocol=5).dump(value)
    return buffer.getvalue()


class MissingName(Exception):
    pass


class _Loader:
    """Loads names on demand: a pickle that refers to another name loads that one first."""

    def __init__(self, blobs: dict, namespace: dict) -> None:
        self.blobs = blobs
        self.namespace = namespace
        self.loaded: dict = {}
        self._loading: set = set()

    def load(self, name: str):
        if name in self.loaded:
            return self.loaded[name]
        if name in self._loading or name not in self.blobs:
            raise MissingName(f"it refers to {name}, which was not kept")
        self._loading.add(name)
        import io
        import pickle

        loader = self

        class StateUnpickler(pickle.Unpickler):
            def persistent_load(self, pid):
                if pid == _NAMESPACE:
                    return loader.namespace
                if isinstance(pid, str) and pid.startswith(_NAME):
                    return loader.load(pid[len(_NAME) :])
                raise pickle.UnpicklingError("unknown reference")

        try:
            value = StateUnpickler(io.BytesIO(self.blobs[name])).load()
        finally:
            self._loading.discard(name)
        self.loaded[name] = value
        return value


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MissingName):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:200]


def _write(folder: str, blobs: list[tuple[str, bytes]]) -> None:
    header = json.dumps(
        {"fingerprint": fingerprint(), "names": [[name, len(blob)] for name, blob in blobs]}
    ).encode()
    partial = os.path.join(folder, STATE_FILE + ".part")
    with open(partial, "wb") as fh:
        fh.write(MAGIC + struct.pack(">I", len(header)) + header)
        while blobs:
            fh.write(blobs.pop(0)[1])  # each pickle is freed once written
    os.rename(partial, os.path.join(folder, STATE_FILE))


def _discard(folder: str) -> None:
    for name in (STATE_FILE + ".part", STATE_FILE):
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def write_notes(folder: str, notes: list[str]) -> None:
    """The notes the host passes to the model (text like stdout: shown, never believed)."""
    kept = [note[:MAX_NOTE_CHARS] for note in notes[:MAX_NOTES]]
    if len(notes) > MAX_NOTES:
        kept.append(f"(+{len(notes) - MAX_NOTES} more notes)")
    try:
        with open(os.path.join(folder, NOTES_FILE), "w", encoding="utf-8") as fh:
            json.dump(kept, fh)
    except OSError:
        pass
