"""What a run gets, in words: the policy summarized for `doctor` and the bot's /sandbox."""

from __future__ import annotations

from app.sandbox.install_policy import SECCOMP_FILE
from app.sandbox.policy import SandboxPolicy


def policy_summary(policy: SandboxPolicy) -> dict[str, object]:
    return {
        "image": policy.image,
        "runtime": policy.runtime,
        "network": "none",
        "user (code)": f"one uid per run from {policy.code_uid_range}",
        "capabilities": "all dropped",
        "no-new-privileges": True,
        "root filesystem": "read-only",
        "memory": f"{policy.memory_bytes} bytes, no swap",
        "cpus": policy.cpus,
        "pids limit": policy.pids_limit,
        "seccomp": (
            f"the project's profile ({SECCOMP_FILE.name}: no io_uring)"
            if policy.runtime == "runc"
            else "gVisor's own kernel (runsc confines it)"
        ),
        "/tmp": f"tmpfs {policy.tmp_size_bytes} bytes, {policy.tmp_inodes} inodes, noexec",
        "output": (
            f"tmpfs {policy.output_size_bytes} bytes, {policy.output_inodes} inodes at "
            f"{policy.output_mount}, noexec, read by the output warden (keeper uid)"
        ),
        "input": f"the run's files only, read-only binds under {policy.input_mount}",
        "session state": (
            f"tmpfs {policy.state_file_cap} bytes at {policy.state_mount} (the new snapshot, sent "
            f"by the output warden); the last one read-only at {policy.state_input_path}"
            if policy.keeps_state
            else "off"
        ),
        "packages": (
            f"approved auto-installed packages: read-only binds under {policy.package_mount}, "
            "installed beforehand by a separate container (network, no user code or files)"
        ),
        "stdout/stderr cap": f"{policy.max_stream_bytes} bytes each",
        "output files cap": f"{policy.max_output_files} files, {policy.output_size_bytes} bytes",
        "environment": "allow-list only: " + ", ".join(sorted(policy.code_environment())),
    }
