"""DockerEngine: the one class that talks to the Docker engine, the only code using the docker SDK.

It implements app.sandbox.engine.Engine for the run path, plus what the admin tools need (image
inspection, builds, imports). SDK and HTTP failures are translated at this boundary: an engine
that cannot be reached is EngineUnavailable (with where it was looked for), a missing image is
ImageMissing, anything else the engine refuses is EngineError with its explanation. Nothing
beyond this module sees a docker or requests exception.

The docker SDK blocks, so async callers go through `call()`, which runs SDK work on this engine's
own thread pool (a run holds a thread for its whole exec step; sharing asyncio's default pool
would let long runs starve everything else).
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import docker
import requests
from docker.errors import ContainerError, DockerException, ImageNotFound, NotFound
from docker.models.containers import _create_container_args

from app.sandbox.engine import (
    EngineError,
    EngineUnavailable,
    ExecStatus,
    ExecStream,
    ImageMissing,
)
from app.sandbox.identities import created_ns

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def explanation(exc: BaseException) -> str:
    """The engine's own words for a failure, else the exception's text."""
    return str(getattr(exc, "explanation", None) or exc)


def _sdk_spelling(args: dict) -> dict:
    """The policy's plain `stdin_once` in the SDK's spelling: it sets StdinOnce (stdin closes
    when the attached client goes) only for a container that is not detached and has stdin open."""
    args = dict(args)
    if args.pop("stdin_once", False):
        args["detach"] = False
    return args


def _translated(method: F) -> F:
    """SDK and HTTP exceptions become the engine's own (see the module doc)."""

    @functools.wraps(method)
    def wrapper(self: DockerEngine, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (EngineUnavailable, EngineError):
            raise
        except ImageNotFound as exc:
            raise ImageMissing(explanation(exc)) from None
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailable(self.unreachable(exc)) from None
        except (DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(explanation(exc)) from None

    return wrapper  # type: ignore[return-value]


class DockerEngine:
    def __init__(
        self,
        client_factory: Callable[[], docker.DockerClient] | None = None,
        max_workers: int = 16,
        timeout: float = 120,
    ) -> None:
        self._client_factory = client_factory or (lambda: docker.from_env(timeout=timeout))
        self._client: docker.DockerClient | None = None
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="docker")
        self._network_lock = threading.Lock()
        self.unremoved: set[str] = set()

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = self._client_factory()
            except DockerException as exc:
                raise EngineUnavailable(self.unreachable(exc)) from None
        return self._client

    def unreachable(self, exc: Exception) -> str:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return (
            f"sandbox unavailable: cannot reach the Docker engine at {where} ({reason}). "
            "Is dockerd running and is its socket readable by this user?"
        )

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            self._client.close()

    # Engine

    def ping(self) -> None:
        try:
            self.client.ping()
        except (DockerException, OSError, requests.exceptions.RequestException) as exc:
            raise EngineUnavailable(self.unreachable(exc)) from None

    @_translated
    def info(self) -> dict:
        return self.client.info()

    @_translated
    def version(self) -> dict:
        """The engine's versions, its components' (containerd, runc, docker-init) included."""
        return self.client.version()

    @_translated
    def image_labels(self, reference: str) -> dict[str, str] | None:
        """The labels of a local image, None when it does not exist."""
        image = self.image_inspect(reference)
        return None if image is None else (image.get("Config") or {}).get("Labels") or {}

    @_translated
    def image_inspect(self, reference: str) -> dict | None:
        """The engine's inspection of a local image (Id, RepoTags, Config...), None if missing."""
        try:
            return self.client.api.inspect_image(reference)
        except ImageNotFound:
            return None

    @_translated
    def image_history(self, reference: str) -> list[dict]:
        """The layers of a local image, newest first (CreatedBy is the build step)."""
        return self.client.api.history(reference)

    @_translated
    def image_id(self, reference: str) -> str:
        """The content id (sha256:...) of a local image; ImageMissing when it does not exist."""
        return self.client.images.get(reference).id

    @_translated
    def read_image_file(self, args: dict, path: str, max_bytes: int) -> bytes | None:
        """A regular file of an image, read through a container that is created, never started.

        None when the file does not exist, is not a regular file or is larger than `max_bytes`.
        """
        container_id = self._create(args)
        try:
            try:
                chunks, stat = self.client.api.get_archive(container_id, path)
            except NotFound:
                return None
            if stat.get("size", 0) > max_bytes:
                return None
            data = b"".join(chunks)
        finally:
            self.remove(container_id)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None or not member.isfile() or member.size > max_bytes:
                return None
            extracted = tar.extractfile(member)
            return extracted.read() if extracted else None

    @_translated
    def run_to_completion(self, args: dict, timeout: float) -> int | None:
        """Create, start and wait for a container, then remove it. Its exit code, or None when
        `timeout` ran out (removal kills it)."""
        container_id = self._create(args)
        try:
            self.client.api.start(container_id)
            try:
                return int(self.client.api.wait(container_id, timeout=timeout)["StatusCode"])
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                return None
        finally:
            self.remove(container_id)

    @_translated
    def run_removing(self, args: dict) -> int:
        """docker-py's own `containers.run(..., remove=True)`, waiting for the exit: the one-call
        path other sandboxes take (the bench's cold baseline). Its exit code."""
        foreground = {
            k: v for k, v in args.items() if k not in ("detach", "stdin_open", "stdin_once")
        }
        try:
            self.client.containers.run(**foreground, remove=True)
        except ContainerError as exc:
            return int(exc.exit_status)
        return 0

    @_translated
    def cpu_seconds(self, container_id: str) -> float | None:
        """CPU time the container's cgroup has used so far, from the engine's one-shot stats;
        None when the engine does not say."""
        stats = self.client.api.stats(container_id, stream=False, one_shot=True)
        usage = ((stats or {}).get("cpu_stats") or {}).get("cpu_usage") or {}
        total = usage.get("total_usage")
        return total / 1e9 if isinstance(total, int | float) and total > 0 else None

    @_translated
    def run_and_capture(self, args: dict, timeout: float) -> tuple[int, bytes, bytes]:
        """Create, start and wait for a container, then remove it: (exit code, stdout, stderr),
        read from the engine's log (so `args` must leave a readable log driver, the default)."""
        container_id = self._create(args)
        try:
            self.client.api.start(container_id)
            status = self.client.api.wait(container_id, timeout=timeout)
            out = self.client.api.logs(container_id, stdout=True, stderr=False)
            err = self.client.api.logs(container_id, stdout=False, stderr=True)
        finally:
            self.remove(container_id)
        return int(status.get("StatusCode", -1)), out, err

    # Containers

    def _create(self, args: dict) -> str:
        """A container of `containers.create` arguments (docker-py's own conversion, so both
        accept exactly the same), by the low-level create: `containers.create` would inspect the
        new container too, one round trip more on every start. When the answer is lost the engine
        may have made it: only its name is known, kept for the reaper like a failed removal."""
        version = self.client.api._version
        converted = _create_container_args({**_sdk_spelling(args), "version": version})
        try:
            return self.client.api.create_container(**converted)["Id"]
        except BaseException:
            if args.get("name"):
                self.unremoved.add(args["name"])
            raise

    @_translated
    def create_and_start(self, args: dict) -> str:
        container_id = self._create(args)
        try:
            self.client.api.start(container_id)
        except BaseException:
            self.remove(container_id)
            raise
        return container_id

    @_translated
    def create_attach_start(self, args: dict) -> tuple[str, ExecStream]:
        """Create a container, attach to its main process's stdio (before it can say a word),
        start it; (id, stream). The stream writes to the main process's stdin (`stdin_open`)."""
        container_id, stream, _ = self.timed_create_attach_start(args)
        return container_id, stream

    @_translated
    def timed_create_attach_start(self, args: dict) -> tuple[str, ExecStream, dict[str, float]]:
        """`create_attach_start`, with the seconds each of its three round trips took (the
        bench's refill breakdown)."""
        took: dict[str, float] = {}
        started = time.perf_counter()
        container_id = self._create(args)
        took["create"] = time.perf_counter() - started
        try:
            started = time.perf_counter()
            raw = self.client.api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            stream = ExecStream(None, raw)
            took["attach"] = time.perf_counter() - started
            try:
                started = time.perf_counter()
                self.client.api.start(container_id)
                took["start"] = time.perf_counter() - started
            except BaseException:
                stream.close()
                raise
        except BaseException:
            self.remove(container_id)
            raise
        return container_id, stream, took

    @_translated
    def inspect(self, container_id: str) -> dict:
        """The engine's inspection of a container ({} when it is gone)."""
        try:
            return self.client.api.inspect_container(container_id)
        except NotFound:
            return {}

    @_translated
    def is_running(self, container_id: str) -> tuple[bool, bool]:
        """(running, oom_killed) for a container; (False, False) when it is gone."""
        state = self.state(container_id)
        return bool(state.get("Running")), bool(state.get("OOMKilled"))

    @_translated
    def state(self, container_id: str) -> dict:
        """The engine's State of a container ({} when it is gone)."""
        return self.inspect(container_id).get("State") or {}

    def kill(self, container_id: str) -> None:
        try:
            self.client.api.kill(container_id)
        except (DockerException, requests.exceptions.RequestException, EngineUnavailable):
            pass  # gone, stopped already, or the engine is away: removal or the reaper follows

    def remove(self, container_id: str) -> None:
        try:
            self._remove(container_id)
        except (EngineUnavailable, EngineError):
            # Also a container created a moment before the engine went (its start failed): only
            # this layer knows its id, so it is kept here for the reaper.
            self.unremoved.add(container_id)
            raise
        self.unremoved.discard(container_id)

    @_translated
    def _remove(self, container_id: str) -> None:
        try:
            self.client.api.remove_container(container_id, force=True, v=True)
        except NotFound:
            pass

    @_translated
    def containers(self, filters: dict) -> list[dict]:
        """Every container matching `filters`, stopped ones too: Id, Names, Labels, Created
        (epoch), State (`running`, `exited`, `created`...)."""
        return [
            {
                "Id": c["Id"],
                "Names": c.get("Names") or [],
                "Labels": c.get("Labels") or {},
                "Created": c.get("Created", 0),
                "State": c.get("State", ""),
            }
            for c in self.client.api.containers(all=True, filters=filters)
        ]

    @_translated
    def ensure_network(self, args: dict) -> None:
        """Create the network unless it exists. The engine does not refuse a second network of
        the same name created at the same moment, so a creator that finds an older twin removes
        its own at once (before anything joins it): every process ends up with the oldest."""
        with self._network_lock:
            name = args["name"]
            for _ in range(20):
                found = [n for n in self.client.api.networks(names=[name]) if n["Name"] == name]
                if len(found) == 1:
                    return self._check_network(args, found[0]["Id"])
                if not found:
                    created = self.client.api.create_network(
                        name, driver=args["driver"], options=args["options"], labels=args["labels"]
                    )["Id"]
                    twins = [n for n in self.client.api.networks(names=[name]) if n["Name"] == name]
                    oldest = min(twins, key=lambda n: (created_ns(n), n["Id"]))
                    if oldest["Id"] != created:
                        self.client.api.remove_network(created)
                    continue
                time.sleep(0.1)  # another process is removing its twin
            raise EngineError(f"more than one network is named {name}: remove the extra ones")

    def _check_network(self, args: dict, network_id: str) -> None:
        found = self.client.api.inspect_network(network_id).get("Options") or {}
        for key, value in args["options"].items():
            if found.get(key) != value:
                name = args["name"]
                raise EngineError(
                    f"the network {name} exists with {key}={found.get(key)!r}, not {value!r}: "
                    f"remove it (`docker network rm {name}`); the next install creates it again"
                )

    def list_containers(self, filters: dict) -> list[str]:
        return [c["Id"] for c in self.containers(filters)]

    # Exec

    @_translated
    def exec_attach(
        self, container_id: str, *, cmd: list[str], user: str, environment: dict, workdir: str
    ) -> ExecStream:
        exec_id = self.client.api.exec_create(
            container_id,
            cmd,
            stdin=True,
            stdout=True,
            stderr=True,
            user=user,
            environment=environment,
            workdir=workdir,
        )["Id"]
        raw = self.client.api.exec_start(exec_id, socket=True)
        return ExecStream(exec_id, raw)

    @_translated
    def exec_status(self, exec_id: str, wait: float = 2.0) -> ExecStatus:
        """Exit status of an exec; waits briefly for the engine to notice the process ended."""
        end = time.monotonic() + wait
        while True:
            info = self.client.api.exec_inspect(exec_id)
            if not info.get("Running") or time.monotonic() >= end:
                return ExecStatus(bool(info.get("Running")), info.get("ExitCode"))
            time.sleep(0.01)

    # Images (admin tools: app/ops/image.py)

    @_translated
    def pull_image(self, repository: str, tag: str) -> None:
        self.client.images.pull(repository, tag=tag)

    @_translated
    def tag_image(self, reference: str, repository: str, tag: str) -> None:
        self.client.api.tag(reference, repository, tag=tag)

    @_translated
    def import_image(self, archive: str, repository: str, tag: str, changes: list[str]) -> None:
        self.client.api.import_image_from_file(
            archive, repository=repository, tag=tag, changes=changes
        )

    def build_image(self, context: io.BytesIO, **options: Any) -> Iterator[dict]:
        """The build's decoded progress chunks (`stream`, `error`); EngineError on failure."""
        try:
            yield from self.client.api.build(
                fileobj=context, custom_context=True, decode=True, **options
            )
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnavailable(self.unreachable(exc)) from None
        except (DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(explanation(exc)) from None
