"""The sandbox service's wire format, shared by the service (server.py) and its client.

    GET  /v1/health   {"ok", "engine", "max_timeout", "instance", ...}; 503 when the engine is gone
    GET  /v1/stats    SandboxStatus as JSON
    GET  /v1/policy   {"policy": policy_summary(policy), "max_timeout", "environment"}: read-only
    POST /v1/runs     body: one JSON line (the run), then each listed file's bytes, in order
    POST /v1/sessions/reset   {"user_id", "session_id"}: forget that session's state -> {"reset"}

A run's response is a stream of frames, each one JSON line:

    {"event": "queued", "position": N}      whenever the run's place in the queue changes
    {"event": "alive"}                      every few seconds while the run is in progress
    {"event": "result", "result": {...}}    RunResult; its files' bytes follow, in order
    {"event": "end"}                        the stream is complete

Refused requests get a 4xx status and `{"error": "...", "field": "..."}` before any run starts.
The service takes no container settings and no path from its client: a run names its files by
id, and their bytes come in the request. Adding a field: a RunResult field of a plain type is
carried as it is (result_to_wire / result_from_wire go by the dataclass); a request field is
added to REQUEST_FIELDS and checked in parse_run.
"""

from __future__ import annotations

import json
import math
import os
import re
import typing
from dataclasses import dataclass, fields
from typing import Any

from app.sandbox.result import InputFile, RunResult, RunStatus, SkippedOutput
from app.sandbox.sessions import SESSION_ID
from app.user_ids import is_user_id

VERSION = 1
HEALTH = "/v1/health"
STATS = "/v1/stats"
POLICY = "/v1/policy"
RUNS = "/v1/runs"
SESSION_RESET = "/v1/sessions/reset"
RUN_CONTENT_TYPE = "application/x-codeinterp-run"
FRAMES_CONTENT_TYPE = "application/x-codeinterp-frames"

# The file store's rule for user ids (app/files/store.py; tests/unit/test_sandboxd_wire.py keeps
# them equal) and for file ids and their on-disk names: <file id><extension of the type table>.
FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,16}){0,2}")
TYPE_NAME = re.compile(r"[a-z0-9_+.-]{0,32}")
MAX_NAME_CHARS = 255

REQUEST_FIELDS = frozenset({"code", "user_id", "session_id", "timeout", "files"})
FILE_FIELDS = frozenset({"file_id", "name", "filename", "size", "type", "category"})
# Files cross the wire and the disk in chunks of this size (see server.py on why on the loop).
CHUNK = 256 * 1024
# Room for the JSON around the code and a file entry (names are at most MAX_NAME_CHARS).
REQUEST_OVERHEAD = 16 * 1024
FILE_ENTRY_BYTES = 2048
# json.dumps escapes a character to at most 6 bytes (\\uXXXX, twice for a surrogate pair: 12
# for a 4-byte UTF-8 character).
JSON_EXPANSION = 6


class RequestRejected(Exception):
    """A request the service refuses: the HTTP status and one sentence naming the field."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def to_json(self) -> dict:
        data = {"error": self.message}
        if self.field:
            data["field"] = self.field
        return data


class ProtocolError(Exception):
    """What the service sent does not follow this format (a client's view)."""


@dataclass(frozen=True)
class RunLimits:
    """What the service accepts; the code limit is its policy's, the rest its settings'."""

    max_code_bytes: int
    max_timeout: float
    max_files: int
    max_file_bytes: int

    @property
    def max_input_bytes(self) -> int:
        return self.max_files * self.max_file_bytes

    @property
    def max_header_bytes(self) -> int:
        return (
            JSON_EXPANSION * self.max_code_bytes
            + self.max_files * FILE_ENTRY_BYTES
            + REQUEST_OVERHEAD
        )


@dataclass(frozen=True)
class RunSpec:
    """A checked run request: every value is one the service accepts."""

    code: str
    user_id: str
    session_id: str
    timeout: float | None
    files: tuple[InputFile, ...]


# Client side: a request


def request_line(
    code: str, user_id: str, session_id: str, timeout: float | None, files: tuple[InputFile, ...]
) -> bytes:
    body: dict[str, Any] = {
        "code": code,
        "user_id": user_id,
        "files": [
            {
                "file_id": f.file_id,
                "name": f.name,
                "filename": f.filename,
                "size": f.size,
                "type": f.type,
                "category": f.category,
            }
            for f in files
        ],
    }
    if session_id:
        body["session_id"] = session_id
    if timeout is not None:
        body["timeout"] = timeout
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


# Service side: checking a request


def parse_run(line: bytes, limits: RunLimits) -> RunSpec:
    """The run request's JSON line, every field checked; RequestRejected names the first
    problem."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise RequestRejected(400, "the request is not a JSON object on one line") from None
    if not isinstance(data, dict):
        raise RequestRejected(400, "the request must be a JSON object")
    unknown = sorted(set(data) - REQUEST_FIELDS)
    if unknown:
        raise RequestRejected(
            400,
            f"unknown field {unknown[0]!r}: a run takes only "
            f"{', '.join(sorted(REQUEST_FIELDS))}; container settings are the service's own",
            unknown[0],
        )
    code = data.get("code")
    if not isinstance(code, str):
        raise RequestRejected(400, "code must be a string", "code")
    if not code.strip():
        raise RequestRejected(400, "there is no code to run", "code")
    size = len(code.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_code_bytes:
        raise RequestRejected(
            413, f"the code is {size} bytes, over the limit of {limits.max_code_bytes}", "code"
        )
    user_id = data.get("user_id")
    if not is_user_id(user_id):
        raise RequestRejected(400, "user_id must be 1 to 64 letters, digits, '-' or '_'", "user_id")
    session_id = data.get("session_id", "")
    if not isinstance(session_id, str) or (session_id and not SESSION_ID.fullmatch(session_id)):
        raise RequestRejected(
            400, "session_id must be 1 to 128 letters, digits, '.', ':', '-' or '_'", "session_id"
        )
    return RunSpec(
        code=code,
        user_id=user_id,
        session_id=session_id,
        timeout=_timeout(data.get("timeout"), limits.max_timeout),
        files=_files(data.get("files", []), limits),
    )


def _timeout(value: object, maximum: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RequestRejected(400, "timeout must be a number of seconds", "timeout")
    if value <= 0:
        raise RequestRejected(400, "timeout must be a positive number of seconds", "timeout")
    if value > maximum:
        raise RequestRejected(
            400, f"timeout {value:g} s is over this service's limit of {maximum:g} s", "timeout"
        )
    return float(value)


def _files(value: object, limits: RunLimits) -> tuple[InputFile, ...]:
    if not isinstance(value, list):
        raise RequestRejected(400, "files must be a list", "files")
    if len(value) > limits.max_files:
        raise RequestRejected(
            413, f"{len(value)} files, over the limit of {limits.max_files} per run", "files"
        )
    checked: list[InputFile] = []
    for index, entry in enumerate(value):
        where = f"files[{index}]"
        if not isinstance(entry, dict) or set(entry) != FILE_FIELDS:
            raise RequestRejected(
                400, f"{where} must be an object with {', '.join(sorted(FILE_FIELDS))}", where
            )
        checked.append(_file(entry, where, limits))
    ids = [f.file_id for f in checked]
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise RequestRejected(400, f"file {duplicate} is listed twice", "files")
    if sum(f.size for f in checked) > limits.max_input_bytes:
        raise RequestRejected(
            413, f"the files add up to more than {limits.max_input_bytes} bytes", "files"
        )
    return tuple(checked)


def _file(entry: dict, where: str, limits: RunLimits) -> InputFile:
    file_id, filename, name = entry["file_id"], entry["filename"], entry["name"]
    if not isinstance(file_id, str) or not FILE_ID.fullmatch(file_id):
        raise RequestRejected(
            400, f"{where}.file_id must be 1 to 64 letters, digits, '-' or '_'", f"{where}.file_id"
        )
    # The on-disk name is the file id and an extension, never a path of the client's.
    if (
        not isinstance(filename, str)
        or not filename.startswith(file_id)
        or not EXTENSION.fullmatch(filename[len(file_id) :])
    ):
        raise RequestRejected(
            400,
            f"{where}.filename must be the file id and its extension (e.g. {file_id}.csv)",
            f"{where}.filename",
        )
    if (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > MAX_NAME_CHARS
        or not name.isprintable()
        or "/" in name
    ):
        raise RequestRejected(
            400,
            f"{where}.name must be a file name of 1 to {MAX_NAME_CHARS} printable characters "
            "without '/'",
            f"{where}.name",
        )
    size = entry["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RequestRejected(400, f"{where}.size must be a whole number of bytes", f"{where}.size")
    if size > limits.max_file_bytes:
        raise RequestRejected(
            413,
            f"{where} is {size} bytes, over the limit of {limits.max_file_bytes}",
            f"{where}.size",
        )
    for key in ("type", "category"):
        if not isinstance(entry[key], str) or not TYPE_NAME.fullmatch(entry[key]):
            raise RequestRejected(
                400, f"{where}.{key} must be a type name of the file type table", f"{where}.{key}"
            )
    return InputFile(
        file_id=file_id,
        name=name,
        filename=filename,
        size=size,
        type=entry["type"],
        category=entry["category"],
    )


# Frames and bytes


def frame(event: str, **values: Any) -> bytes:
    return json.dumps({"event": event, **values}, ensure_ascii=False).encode() + b"\n"


def write_all(fd: int, chunk: bytes) -> None:
    """Write a received chunk of a file whole (os.write may take less)."""
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(line: bytes) -> dict:
    if not line.endswith(b"\n"):
        raise ProtocolError("the stream ended in the middle of a frame")
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("a frame is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise ProtocolError("a frame has no event")
    return data


def parse_session(data: object) -> tuple[str, str]:
    """(user id, session id) of a reset request; RequestRejected naming the bad field."""
    if not isinstance(data, dict):
        raise RequestRejected(400, "the request is not a JSON object")
    user_id, session_id = data.get("user_id"), data.get("session_id")
    if not is_user_id(user_id):
        raise RequestRejected(400, "user_id is not a valid user id", "user_id")
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise RequestRejected(400, "session_id is not a valid session name", "session_id")
    return str(user_id), session_id


# Results: every RunResult field of a plain type travels as it is


_STRINGS = ("installed_packages", "state_notes")  # tuples of strings
_SPECIAL = {"status", "files", "skipped", *_STRINGS}
_HINTS = typing.get_type_hints(RunResult)
_PLAIN = tuple(f.name for f in fields(RunResult) if f.name not in _SPECIAL)


def result_to_wire(result: RunResult) -> dict:
    data = {name: getattr(result, name) for name in _PLAIN}
    data["status"] = result.status.value
    data["files"] = [{"name": f.name, "size": f.size} for f in result.files]
    data["skipped"] = [{"name": s.name, "reason": s.reason} for s in result.skipped]
    for name in _STRINGS:
        data[name] = list(getattr(result, name))
    return data


def result_from_wire(data: object) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """RunResult's keyword arguments but `files`, and the announced (name, size) of each file.
    ProtocolError when a value has the wrong type; unknown keys (a newer service) are ignored."""
    if not isinstance(data, dict):
        raise ProtocolError("the result is not an object")
    values: dict[str, Any] = {name: _plain(name, data[name]) for name in _PLAIN if name in data}
    try:
        values["status"] = RunStatus(data.get("status"))
    except ValueError:
        raise ProtocolError(f"unknown run status {data.get('status')!r}") from None
    values["skipped"] = tuple(
        SkippedOutput(_str(s, "name"), _str(s, "reason")) for s in _list(data, "skipped")
    )
    for name in _STRINGS:
        items = _list(data, name)
        if not all(isinstance(item, str) for item in items):
            raise ProtocolError(f"{name} must be strings")
        values[name] = tuple(items)
    announced = []
    for item in _list(data, "files"):
        size = item.get("size") if isinstance(item, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProtocolError("an output file has no size")
        announced.append((_str(item, "name"), size))
    return values, announced


def _plain(name: str, value: object) -> object:
    """A value of one of the field's plain types (str, bool, int, float, None)."""
    hint = _HINTS[name]
    for kind in typing.get_args(hint) or (hint,):
        if kind is type(None) and value is None:
            return None
        if kind is float and type(value) in (int, float):
            return float(value)  # type: ignore[arg-type]
        if kind in (str, bool, int) and type(value) is kind:
            return value
    raise ProtocolError(f"the result's {name} has the wrong type")


def _list(data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ProtocolError(f"the result's {key} is not a list")
    return value


def _str(item: object, key: str) -> str:
    value = item.get(key) if isinstance(item, dict) else None
    if not isinstance(value, str):
        raise ProtocolError(f"an entry's {key} is not a string")
    return value
