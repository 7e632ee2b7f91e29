"""SandboxPolicy: every setting of a sandbox container, in one place.

The runner never builds docker arguments itself: it asks the policy. Security reviews and
`python -m app doctor` read the same object, so what is documented is what is applied. The
arguments are plain values in the engine API's own vocabulary (no docker SDK types), so the
policy can be read, compared and tested without Docker. The composition root (app/wiring.py)
builds the one policy of a process from its settings.
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from app.sandbox.install_policy import (
    NO_LOGS,
    SECCOMP_PROFILE,
    InstallContainers,
    bind_mount,
)
from app.sandbox.names import (
    CODE_UID_LABEL,
    COLLECTOR_SCRIPT,
    INSTANCE_LABEL,
    MANAGED_LABEL,
    OWNER_LABEL,
    POOL_LABEL,
    PYTHON,
    ROLE_LABEL,
    RUN_LABEL,
    RUNNER_SCRIPT,
    USER_LABEL,
)

# Under gVisor the engine's pids limit also counts the sandbox kernel's own host threads (its Go
# runtime and, with the ptrace platform, one stub per guest thread); without room for them an
# I/O-heavy but harmless run crashes the whole sandbox.
RUNSC_PIDS_HEADROOM = 128


# Room beside a snapshot's pickles in its folder and in what the warden sends (header, notes).
STATE_OVERHEAD = 4 * 1024**2


HOSTNAME = "sandbox"
# The sandbox's /etc/hosts (the loopback names and its own hostname): with the network left to
# runc (`network_disabled`), the engine writes none, and its empty placeholder would leave even
# `localhost` unresolvable.
ETC_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
    f"127.0.1.1\t{HOSTNAME}\n"
)


class HostPathError(ValueError):
    """A path that cannot be mounted because it is outside DATA_DIR."""


def write_etc_hosts(path: Path) -> None:
    """`ETC_HOSTS` at `path`, unless it is there already: written aside (a name of its own, as
    the pool's starts run in threads at once) and renamed, so a container created meanwhile, by
    this or another process, mounts a whole file."""
    try:
        if path.read_text() == ETC_HOSTS:
            return
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    aside.write_text(ETC_HOSTS)
    aside.chmod(0o644)
    os.replace(aside, path)


@dataclass(frozen=True)
class SandboxPolicy(InstallContainers):
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
    # Inode caps of the tmpfs mounts: empty files cost no bytes but kernel memory each.
    output_inodes: int = 8192
    tmp_inodes: int = 65536
    collect_timeout: float = 60.0
    # The longest a sandbox lives before its run starts (a warm container waiting in the pool):
    # past it the warden ends the sandbox itself, whether or not anyone is left to remove it.
    idle_life: float = 3600.0 + 120.0
    # The code's uids: each sandbox container gets one of its own (app/sandbox/identities.py).
    # Below 65536, so a user-namespace remap of the usual 65536 ids still maps them.
    code_uid_first: int = 20000
    code_uid_last: int = 29999
    keeper_uid: int = 10002
    input_mount: str = "/mnt/data"
    output_mount: str = "/mnt/output"
    data_dir: Path = Path("data")
    host_data_dir: Path | None = None
    # Package install step (a separate container with network; see packages_install_args)
    package_mount: str = "/opt/packages"
    install_uid: int = 10003
    install_memory_bytes: int = 2 * 1024**3
    install_cpus: float = 1.0
    install_pids_limit: int = 256
    install_timeout: float = 300.0
    package_index_url: str = ""
    package_extra_index_url: str = ""
    package_proxy: str = ""
    # The install containers' own bridge (made on first use; no traffic between two installs).
    install_network: str = "codeinterp-install"
    # A session's state (app/sandbox/sessions.py), 0 keeps none: the cap is on the names' pickles.
    state_max_bytes: int = 0
    state_seconds: float = 30.0
    state_mount: str = "/mnt/state"
    state_input_mount: str = "/mnt/session"
    # Imported by a warm container's runner before it reports ready, so runs skip that cost.
    warm_preload: tuple[str, ...] = ("numpy", "pandas")
    """Imported (and exercised) by a warm container's runner before it says it is ready."""
    warm_defer: tuple[str, ...] = ("matplotlib", "matplotlib.pyplot")
    """Imported after it is ready, by the code's child while no job has come: a run that takes
    the container early does not wait for them, and pays for them only if it uses them."""
    hosts_file: Path | None = None
    """Mounted read-only at /etc/hosts in every sandbox, written by `container_args` when
    missing (DataLayout.sandbox_hosts); None mounts none (the engine's empty file)."""
    owner: str = ""
    """The process that creates this policy's containers (app/sandbox/leftovers.owner_token):
    labelled on each, so the leftovers of a dead process can be told from live runs."""

    @property
    def code_uids(self) -> range:
        """The uids the code may run as; one per container at a time."""
        return range(self.code_uid_first, self.code_uid_last + 1)

    @property
    def code_uid_range(self) -> str:
        return f"{self.code_uid_first}-{self.code_uid_last}"

    def labels(self, run_id: str, user_id: str, **extra: str) -> dict[str, str]:
        """Every label of a container of this instance; `extra` adds role or pool labels."""
        labels = {
            MANAGED_LABEL: "true",
            INSTANCE_LABEL: self.instance,
            RUN_LABEL: run_id,
            USER_LABEL: str(user_id),
        }
        if self.owner:
            labels[OWNER_LABEL] = self.owner
        labels.update(extra)
        return labels

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

    @property
    def keeps_state(self) -> bool:
        return self.state_max_bytes > 0

    @property
    def state_file_cap(self) -> int:  # the largest snapshot a sandbox may send or be given
        return self.state_max_bytes + STATE_OVERHEAD

    @property
    def state_input_path(self) -> str:  # its folder is mounted (warm), or the file alone (cold)
        return f"{self.state_input_mount}/state"

    def tmpfs(self, code_uid: int) -> dict[str, str]:
        common = "rw,noexec,nosuid,nodev"
        folders = {
            "/tmp": f"{common},size={self.tmp_size_bytes},nr_inodes={self.tmp_inodes},mode=1777",
            # Owned by the code; its group is the keeper's, so the output warden (keeper uid) can
            # read what the code wrote without being able to write there.
            self.output_mount: (
                f"{common},size={self.output_size_bytes},nr_inodes={self.output_inodes},"
                f"mode=0750,uid={code_uid},gid={self.keeper_uid}"
            ),
        }
        if self.keeps_state:
            # The session's new snapshot, written by the code's uid and sent by the warden.
            folders[self.state_mount] = (
                f"{common},size={self.state_file_cap},nr_inodes=64,"
                f"mode=0750,uid={code_uid},gid={self.keeper_uid}"
            )
        return folders

    def security_opt(self) -> list[str]:
        """no-new-privileges always; under runc the project's seccomp profile too. Under gVisor
        the code's syscalls reach gVisor's own kernel, which runsc confines with its own filter."""
        options = ["no-new-privileges"]
        if self.runtime == "runc":
            options.append(f"seccomp={SECCOMP_PROFILE}")
        return options

    def container_args(
        self,
        *,
        run_id: str,
        user_id: str,
        code_uid: int,
        input_dir: Path | None,
        input_files: list[str] | None = None,
        packages: dict[str, Path] | None = None,
        pool_id: str = "",
        package_root: Path | None = None,
        state_file: Path | None = None,
        state_dir: Path | None = None,
    ) -> dict:
        """Keyword arguments for docker's `containers.create` for one run.

        `code_uid`: the uid the code will run as, this container's own (app/sandbox/identities).
        `input_files`: the run's files in `input_dir` (its manifest), each mounted read-only on
        its own, so nothing else of the folder (expired or unlisted files) is visible; None
        mounts the whole folder (a warm container's staging folder, holding only what it is
        given).
        `packages`: distribution -> its package-cache entry, each mounted read-only.
        `pool_id`: set for a warm container, created before its run and user are known.
        `package_root`: a warm container's whole package folder of the image (every cached
        entry, read-only, where `packages` would mount each), instead of `packages`.
        `state_file`: the session's snapshot, mounted read-only on its own; `state_dir`: a warm
        container's folder for it, placed there when a run takes the container.
        """
        mounts = self.input_mounts(input_dir, input_files)
        mounts += self.package_mounts(packages or {})
        if self.hosts_file is not None:
            write_etc_hosts(self.hosts_file)
        for source, target in (
            (self.hosts_file, "/etc/hosts"),
            (package_root, self.package_mount),
            (state_file, self.state_input_path),
            (state_dir, self.state_input_mount),
        ):
            if source is not None:
                mounts.append(bind_mount(target, self.host_path(source), read_only=True))
        extra = {CODE_UID_LABEL: str(code_uid), **({POOL_LABEL: pool_id} if pool_id else {})}
        labels = self.labels(run_id, user_id, **extra)
        args = {
            "image": self.image,
            # Known before the engine answers: a container made as the engine went away, its id
            # never returned, is still found by name (Engine.unremoved).
            "name": f"codeinterp-{run_id}-{code_uid}",
            # The main process is the output warden, under the keeper's uid (not the code's): it
            # keeps the sandbox alive between the execs and collects the outputs (warden_command).
            "command": self.warden_command(code_uid),
            "stdin_open": True,
            # The main process's stdin closes when the host's attach goes away (its controller
            # died): the warden then ends the sandbox (sandbox_collect.py's module doc).
            "stdin_once": True,
            "user": f"{self.keeper_uid}:{self.keeper_uid}",
            "labels": labels,
            "network_mode": "none",
            # The network namespace is runc's own (only loopback, up), not the engine's: without
            # it dockerd sets a namespace up for "none" all the same, two re-execs of itself per
            # start (a prestart hook and a sysctl) that cost half its CPU for a container, and
            # copies the host's /etc/resolv.conf in.
            "network_disabled": True,
            "cap_drop": ["ALL"],
            "security_opt": self.security_opt(),
            "read_only": True,
            "tmpfs": self.tmpfs(code_uid),
            "mounts": mounts,
            "pids_limit": self.engine_pids_limit(),
            "mem_limit": self.memory_bytes,
            "memswap_limit": self.memory_bytes,
            "nano_cpus": int(self.cpus * 1e9),
            "shm_size": self.shm_size_bytes,
            "ulimits": self.ulimits(),
            "init": True,
            "environment": {},
            "hostname": HOSTNAME,
            "working_dir": self.output_mount,
            "log_config": NO_LOGS,
            "ipc_mode": "private",
            "detach": True,
        }
        if self.runtime != "runc":
            args["runtime"] = self.runtime
        return args

    def input_mounts(self, input_dir: Path | None, files: list[str] | None) -> list[dict]:
        """The read-only input mounts: the folder, or only the named files of it."""
        if input_dir is None:
            return []
        if files is None:
            return [bind_mount(self.input_mount, self.host_path(input_dir), read_only=True)]
        mounts = []
        for name in sorted(set(files)):
            if not name or "/" in name or "\0" in name or name in (".", ".."):
                raise HostPathError(f"unsafe input file name {name!r}")
            source = Path(input_dir) / name
            if source.is_symlink() or not source.is_file():
                continue  # gone meanwhile: the code sees the same FileNotFoundError as warm
            mounts.append(
                bind_mount(f"{self.input_mount}/{name}", self.host_path(source), read_only=True)
            )
        return mounts

    # Package installs

    def ulimits(self) -> list[dict]:
        return [
            {"Name": "nofile", "Soft": self.open_files_limit, "Hard": self.open_files_limit},
            {"Name": "core", "Soft": 0, "Hard": 0},
        ]

    def package_mounts(self, packages: dict[str, Path]) -> list[dict]:
        return [
            bind_mount(f"{self.package_mount}/{dist}", self.host_path(entry), read_only=True)
            for dist, entry in sorted(packages.items())
        ]

    def package_paths(self, packages: dict[str, Path]) -> list[str]:
        """The import paths (inside a run) of the mounted package-cache entries."""
        return [f"{self.package_mount}/{dist}/site" for dist in sorted(packages)]

    def probe_container_args(self, image: str) -> dict:
        """A container that is created to read a file of the image and never started."""
        labels = self.labels("probe", "", **{ROLE_LABEL: "probe"})
        return {
            "image": image,
            "command": ["true"],
            "labels": labels,
            "network_mode": "none",
            "log_config": NO_LOGS,
            "detach": True,
        }

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
            # The code's uid has no account in the image: libraries that ask for a user name
            # (getpass.getuser) read these first.
            "USER": "sandbox",
            "LOGNAME": "sandbox",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            # Agg, whose plt.show() saves the open figures (sandbox-image/runtime/sandbox_backend).
            "MPLBACKEND": "module://sandbox_backend",
            "MPLCONFIGDIR": "/tmp/matplotlib",
            "OUTPUT_DIR": self.output_mount,
            "INPUT_DIR": self.input_mount,
            **({"STATE_DIR": self.state_mount} if self.keeps_state else {}),
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
        }

    def runner_exec(
        self, code_uid: int, preload: tuple[str, ...] = (), defer: tuple[str, ...] = ()
    ) -> dict:
        cmd = [PYTHON, "-I", RUNNER_SCRIPT]
        if preload:
            cmd += ["--preload", ",".join(preload)]
        if defer:
            cmd += ["--defer", ",".join(defer)]
        return {
            "cmd": cmd,
            "user": f"{code_uid}:{code_uid}",
            "environment": self.code_environment(),
            "workdir": self.output_mount,
        }

    def warden_command(self, code_uid: int) -> list[str]:
        """The sandbox's main process: the output warden, under the keeper's uid, which the code
        can neither signal nor trace, so its answers (code over, files, report) can be trusted.
        It waits on stdin (attached by the host) and ends the container when that closes or
        when the container's own deadline passes (the run's, armed by the host, or `idle_life`
        before a run), so no sandbox outlives its controller or its time."""
        return [
            *(PYTHON, "-I", COLLECTOR_SCRIPT, "--root", self.output_mount),
            *(
                "--max-files",
                str(self.max_output_files),
                "--max-bytes",
                str(self.output_size_bytes),
            ),
            *("--max-depth", str(self.max_output_depth)),
            *(["--state-root", self.state_mount] if self.keeps_state else []),
            *(["--state-max-bytes", str(self.state_file_cap)] if self.keeps_state else []),
            "--serve",
            "--code-uid",
            str(code_uid),
            "--idle-seconds",
            f"{self.idle_life:g}",
            "--collect-seconds",
            f"{self.collect_timeout:g}",
        ]
