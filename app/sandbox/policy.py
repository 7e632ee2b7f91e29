"""SandboxPolicy: every setting of a sandbox container, in one place.

The runner never builds docker arguments itself: it asks the policy. Security reviews and
`python -m app doctor` read the same object, so what is documented is what is applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from docker.types import LogConfig, Mount, Ulimit

from app.config import Settings

LABEL_PREFIX = "io.codeinterp"
MANAGED_LABEL = f"{LABEL_PREFIX}.managed"
INSTANCE_LABEL = f"{LABEL_PREFIX}.instance"
RUN_LABEL = f"{LABEL_PREFIX}.run_id"
USER_LABEL = f"{LABEL_PREFIX}.user_id"

PYTHON = "/opt/venv/bin/python"
RUNNER_SCRIPT = "/opt/sandbox/sandbox_runner.py"
COLLECTOR_SCRIPT = "/opt/sandbox/sandbox_collect.py"
# Under gVisor the engine's pids limit also counts the sandbox kernel's own host threads (its Go
# runtime and, with the ptrace platform, one stub per guest thread); without room for them an
# I/O-heavy but harmless run crashes the whole sandbox.
RUNSC_PIDS_HEADROOM = 128


class HostPathError(ValueError):
    """A path that cannot be mounted because it is outside DATA_DIR."""


@dataclass(frozen=True)
class SandboxPolicy:
    image: str
    instance: str = "default"
    runtime: str = "runc"
    memory_bytes: int = 1024**3
    cpus: float = 1.0
    pids_limit: int = 128
    tmp_size_bytes: int = 256 * 1024**2
    output_size_bytes: int = 100 * 1024**2
    shm_size_bytes: int = 64 * 1024**2
    max_stream_bytes: int = 1024**2
    max_output_files: int = 20
    max_output_depth: int = 8
    max_code_bytes: int = 1024**2
    open_files_limit: int = 1024
    collect_timeout: float = 60.0
    # A collector that has not said a word by then will not (gVisor with its threads exhausted
    # hangs an exec instead of refusing it): give up on the outputs rather than wait a minute.
    collector_start_timeout: float = 15.0
    code_uid: int = 10001
    keeper_uid: int = 10002
    input_mount: str = "/mnt/data"
    output_mount: str = "/mnt/output"
    data_dir: Path = Path("data")
    host_data_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxPolicy:
        return cls(
            image=settings.sandbox_image,
            instance=settings.sandbox_instance,
            runtime=settings.sandbox_runtime,
            memory_bytes=settings.sandbox_memory,
            cpus=settings.sandbox_cpus,
            pids_limit=settings.sandbox_pids_limit,
            tmp_size_bytes=settings.sandbox_tmp_size,
            output_size_bytes=settings.sandbox_output_size,
            max_stream_bytes=settings.sandbox_max_output_bytes,
            max_output_files=settings.sandbox_max_output_files,
            max_code_bytes=settings.sandbox_max_code_bytes,
            data_dir=settings.data_dir,
            host_data_dir=settings.host_data_dir,
        )

    # Labels

    def labels(self, run_id: str, user_id: str) -> dict[str, str]:
        return {
            MANAGED_LABEL: "true",
            INSTANCE_LABEL: self.instance,
            RUN_LABEL: run_id,
            USER_LABEL: str(user_id),
        }

    def ownership_filter(self) -> dict[str, list[str]]:
        """Engine filter matching every container this instance created."""
        return {"label": [f"{MANAGED_LABEL}=true", f"{INSTANCE_LABEL}={self.instance}"]}

    # Host paths

    def host_path(self, path: Path) -> str:
        """The Docker host's path for a path under DATA_DIR (bind sources are host paths).

        When the bot itself runs in a container its DATA_DIR is a mount of HOST_DATA_DIR.
        """
        data_dir = self.data_dir.resolve()
        resolved = path.resolve()
        try:
            relative = resolved.relative_to(data_dir)
        except ValueError:
            raise HostPathError(f"{path} is outside DATA_DIR ({data_dir})") from None
        base = self.host_data_dir if self.host_data_dir is not None else data_dir
        return str(base / relative)

    # Container

    def tmpfs(self) -> dict[str, str]:
        common = "rw,noexec,nosuid,nodev"
        return {
            "/tmp": f"{common},size={self.tmp_size_bytes},mode=1777",
            self.output_mount: (
                f"{common},size={self.output_size_bytes},mode=0700,"
                f"uid={self.code_uid},gid={self.code_uid}"
            ),
        }

    def container_args(self, *, run_id: str, user_id: str, input_dir: Path | None) -> dict:
        """Keyword arguments for docker's `containers.create` for one run."""
        mounts = []
        if input_dir is not None:
            mounts.append(
                Mount(
                    target=self.input_mount,
                    source=self.host_path(input_dir),
                    type="bind",
                    read_only=True,
                )
            )
        args = {
            "image": self.image,
            "command": ["sleep", "infinity"],
            "user": f"{self.keeper_uid}:{self.keeper_uid}",
            "labels": self.labels(run_id, user_id),
            "network_mode": "none",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": self.tmpfs(),
            "mounts": mounts,
            "pids_limit": self.engine_pids_limit(),
            "mem_limit": self.memory_bytes,
            "memswap_limit": self.memory_bytes,
            "nano_cpus": int(self.cpus * 1e9),
            "shm_size": self.shm_size_bytes,
            "ulimits": [
                Ulimit(name="nofile", soft=self.open_files_limit, hard=self.open_files_limit),
                Ulimit(name="core", soft=0, hard=0),
            ],
            "init": True,
            "environment": {},
            "hostname": "sandbox",
            "working_dir": self.output_mount,
            "log_config": LogConfig(type=LogConfig.types.NONE),
            "ipc_mode": "private",
            "detach": True,
        }
        if self.runtime != "runc":
            args["runtime"] = self.runtime
        return args

    def engine_pids_limit(self) -> int:
        """The engine's pids limit: SANDBOX_PIDS_LIMIT, plus gVisor's own threads under runsc."""
        return self.pids_limit + (RUNSC_PIDS_HEADROOM if self.runtime == "runsc" else 0)

    # Processes inside the container

    def code_environment(self) -> dict[str, str]:
        """The complete environment of the user's code: an allow-list, nothing from the bot."""
        threads = str(max(1, math.ceil(self.cpus)))
        return {
            "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            "OUTPUT_DIR": self.output_mount,
            "INPUT_DIR": self.input_mount,
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
        }

    def runner_exec(self, preload: tuple[str, ...] = ()) -> dict:
        cmd = [PYTHON, "-I", RUNNER_SCRIPT]
        if preload:
            cmd += ["--preload", ",".join(preload)]
        return {
            "cmd": cmd,
            "user": f"{self.code_uid}:{self.code_uid}",
            "environment": self.code_environment(),
            "workdir": self.output_mount,
        }

    def collector_exec(self) -> dict:
        return {
            "cmd": [
                PYTHON,
                "-I",
                COLLECTOR_SCRIPT,
                "--root",
                self.output_mount,
                "--max-files",
                str(self.max_output_files),
                "--max-bytes",
                str(self.output_size_bytes),
                "--max-depth",
                str(self.max_output_depth),
            ],
            # Same uid as the code: it can then kill whatever the code left running.
            "user": f"{self.code_uid}:{self.code_uid}",
            "environment": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            "workdir": "/",
        }

    def describe(self) -> dict[str, object]:
        """Human-readable summary of what a run gets (doctor, admin views)."""
        return {
            "image": self.image,
            "runtime": self.runtime,
            "network": "none",
            "user (code)": f"{self.code_uid}:{self.code_uid}",
            "capabilities": "all dropped",
            "no-new-privileges": True,
            "root filesystem": "read-only",
            "memory": f"{self.memory_bytes} bytes, no swap",
            "cpus": self.cpus,
            "pids limit": self.pids_limit,
            "/tmp": f"tmpfs {self.tmp_size_bytes} bytes, noexec",
            "output": f"tmpfs {self.output_size_bytes} bytes at {self.output_mount}, noexec",
            "input": f"read-only bind at {self.input_mount}",
            "stdout/stderr cap": f"{self.max_stream_bytes} bytes each",
            "output files cap": f"{self.max_output_files} files, {self.output_size_bytes} bytes",
            "environment": "allow-list only: " + ", ".join(sorted(self.code_environment())),
        }
