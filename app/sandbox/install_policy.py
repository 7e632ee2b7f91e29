"""The package install containers' arguments, part of SandboxPolicy (which inherits them): the
same one object holds every container setting; this module only keeps policy.py readable.

An install container runs the image's own install script for one approved distribution, with
network (the project's install network), no user code and no user files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from app.sandbox.names import ICC_OPTION, INSTALL_SCRIPT, MANAGED_LABEL, PYTHON, ROLE_LABEL

NO_LOGS = {"Type": "none", "Config": {}}
# The project's seccomp profile for runc containers (its comment says what it is and why); sent
# as the profile's JSON text, as `docker run --security-opt seccomp=<file>` does.
SECCOMP_FILE = Path(__file__).with_name("seccomp.json")
SECCOMP_PROFILE = json.dumps(json.loads(SECCOMP_FILE.read_text()), separators=(",", ":"))


def bind_mount(target: str, source: str, *, read_only: bool) -> dict:
    """A bind mount in the engine API's form (what docker.types.Mount builds)."""
    return {"Target": target, "Source": source, "Type": "bind", "ReadOnly": read_only}


class InstallContainers:
    """SandboxPolicy's install-step methods; the fields are SandboxPolicy's."""

    image: str
    install_uid: int
    install_memory_bytes: int
    install_cpus: float
    install_pids_limit: int
    package_index_url: str
    package_extra_index_url: str
    package_proxy: str
    install_network: str

    def labels(self, run_id: str, user_id: str, **extra: str) -> dict[str, str]:
        raise NotImplementedError

    def host_path(self, path: Path) -> str:
        raise NotImplementedError

    def ulimits(self) -> list[dict]:
        raise NotImplementedError

    def install_user(self) -> str:
        """uid:gid of the install container. The gid opens /opt/installer (pip); the uid is the
        bot's own when it is not root, so the bot owns what the install writes."""
        uid = os.getuid() or self.install_uid
        return f"{uid}:{self.install_uid}"

    def install_work_owner(self) -> int | None:
        """Who must own an install's work folder: the installer uid when the bot is root (it then
        runs the install as that uid), else nobody is changed (the install runs as the bot)."""
        return None if os.getuid() else self.install_uid

    def install_environment(self) -> dict[str, str]:
        """An allow-list, like a run's: nothing from the bot's environment but the pip settings."""
        env = {
            "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PIP_NO_INPUT": "1",
        }
        if self.package_index_url:
            env["PIP_INDEX_URL"] = self.package_index_url
        if self.package_extra_index_url:
            env["PIP_EXTRA_INDEX_URL"] = self.package_extra_index_url
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            env.update({name: self.package_proxy} if self.package_proxy else {})
        return env

    def install_container_args(
        self,
        *,
        run_id: str,
        user_id: str,
        work_dir: Path,
        distribution: str,
        check_only: bool = False,
    ) -> dict:
        """The install step for one approved distribution: the same image, with network (the
        install network, install_network_args), running only the image's own install script. It
        mounts no user files and runs no user code; its one writable mount is a fresh work folder
        of the package cache. It always uses the engine's default runtime (gVisor is registered
        with --network=none here), so it gets the project's seccomp profile too. `check_only`
        asks the index for the distribution and installs nothing (doctor)."""
        labels = self.labels(run_id, user_id, **{ROLE_LABEL: "install"})
        mode = ["--check-index"] if check_only else []
        return {
            "image": self.image,
            "command": [PYTHON, "-I", INSTALL_SCRIPT, *mode, "--work", "/work", distribution],
            "user": self.install_user(),
            "labels": labels,
            "network_mode": self.install_network,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges", f"seccomp={SECCOMP_PROFILE}"],
            "read_only": True,
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={64 * 1024**2},mode=1777"},
            "mounts": [bind_mount("/work", self.host_path(work_dir), read_only=False)],
            "pids_limit": self.install_pids_limit,
            "mem_limit": self.install_memory_bytes,
            "memswap_limit": self.install_memory_bytes,
            "nano_cpus": int(self.install_cpus * 1e9),
            "ulimits": self.ulimits(),
            "init": True,
            "environment": self.install_environment(),
            "hostname": "installer",
            "working_dir": "/work",
            "log_config": NO_LOGS,
            "detach": True,
        }

    def install_network_args(self) -> dict:
        """The install network, shared by every instance on the engine: a bridge with traffic
        between its containers off (they reach the internet through NAT, never each other)."""
        labels = {MANAGED_LABEL: "true", ROLE_LABEL: "install-network"}
        return {
            "name": self.install_network,
            "driver": "bridge",
            "options": {ICC_OPTION: "false"},
            "labels": labels,
        }
