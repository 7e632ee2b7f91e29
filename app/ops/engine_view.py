"""The audit's view of a probe container as the ENGINE applied it: the report's values, the
effective policy read from `docker inspect`, and the checks of every setting a run depends on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from app.ops import host_checks
from app.sandbox.names import CODE_UID_LABEL
from app.sandbox.policy import SECCOMP_PROFILE, SandboxPolicy

# Variables the engine itself gives every process of a container.
ENGINE_ENVIRONMENT = {"HOSTNAME", "HOME"}

Check = host_checks.Finding
PROFILE_HASH = hashlib.sha256(SECCOMP_PROFILE.encode()).hexdigest()[:12]


@dataclass
class AuditReport:
    image: str
    runtime: str
    effective_policy: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    versions: dict = field(default_factory=dict)
    python_packages: list[dict] = field(default_factory=list)
    sbom: str | None = None
    service: dict = field(default_factory=dict)
    """With SANDBOX_SERVICE_URL: the service's address, policy and time limit."""

    @property
    def ok(self) -> bool:
        """Every check passed; warnings (old versions, host settings) do not fail the audit."""
        return all(c.ok or c.warning for c in self.checks)

    def check(self, name: str, ok: bool, detail: str, fix: str) -> None:
        self.checks.append(Check(name, bool(ok), detail, "" if ok else fix))

    def add(self, finding: Check) -> None:
        if finding.ok:
            finding.fix = ""
        self.checks.append(finding)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def effective_policy(inspect: dict) -> dict:
    """The settings that matter, as the engine reports them for a container."""
    host = inspect.get("HostConfig") or {}
    config = inspect.get("Config") or {}
    return {
        "runtime": host.get("Runtime"),
        "user": config.get("User"),
        "cmd": config.get("Cmd") or [],
        "network_mode": host.get("NetworkMode"),
        "network_disabled": bool(config.get("NetworkDisabled")),
        "privileged": host.get("Privileged"),
        "cap_add": host.get("CapAdd") or [],
        "cap_drop": host.get("CapDrop") or [],
        "security_opt": [_shown_option(o) for o in host.get("SecurityOpt") or []],
        "readonly_rootfs": host.get("ReadonlyRootfs"),
        "memory": host.get("Memory"),
        "memory_swap": host.get("MemorySwap"),
        "nano_cpus": host.get("NanoCpus"),
        "pids_limit": host.get("PidsLimit"),
        "ulimits": [
            f"{u.get('Name')}={u.get('Soft')}:{u.get('Hard')}" for u in host.get("Ulimits") or []
        ],
        "tmpfs": host.get("Tmpfs") or {},
        "shm_size": host.get("ShmSize"),
        "mounts": [
            {
                "type": m.get("Type"),
                "source": m.get("Source"),
                "target": m.get("Destination"),
                "read_only": not m.get("RW", True),
            }
            for m in inspect.get("Mounts") or []
        ],
        "binds": host.get("Binds") or [],
        "devices": host.get("Devices") or [],
        "pid_mode": host.get("PidMode") or "",
        "ipc_mode": host.get("IpcMode") or "",
        "userns_mode": host.get("UsernsMode") or "",
        "init": host.get("Init"),
        "log_driver": (host.get("LogConfig") or {}).get("Type"),
        "environment": sorted(e.split("=", 1)[0] for e in config.get("Env") or []),
        "code_uid": (config.get("Labels") or {}).get(CODE_UID_LABEL, ""),
    }


def _shown_option(option: str) -> str:
    """A security option as shown: a seccomp profile by the hash of its JSON, not its text."""
    name, _, value = option.partition("=")
    if name != "seccomp" or value in ("", "unconfined", "builtin"):
        return option
    try:
        compact = json.dumps(json.loads(value), separators=(",", ":"))
    except ValueError:
        return "seccomp=(unreadable profile)"
    digest = hashlib.sha256(compact.encode()).hexdigest()[:12]
    return f"seccomp={digest}" + (" (the project's profile)" if digest == PROFILE_HASH else "")


def engine_checks(report: AuditReport, p: SandboxPolicy, eff: dict) -> None:
    """The settings a run depends on, as the engine applied them to the probe."""
    expected_runtime = p.runtime
    report.check(
        "runtime",
        (eff["runtime"] or "runc") == expected_runtime,
        f"{eff['runtime']}",
        f"register {expected_runtime} with the engine or set "
        "SANDBOX_RUNTIME (docs/security.md, gVisor)",
    )
    main_uid = str(eff["user"] or "").split(":")[0]
    code_uid = int(eff["code_uid"]) if str(eff["code_uid"]).isdigit() else -1
    report.check(
        "one identity per run: the code's uid is the container's own",
        code_uid in p.code_uids,
        f"code uid {eff['code_uid'] or '(no label)'} of {p.code_uid_range}",
        "containers are created with a code uid label by SandboxPolicy: an engine plugin "
        "or another program removed it",
    )
    report.check(
        "main process is the output warden, not the code's uid",
        main_uid not in ("", "0", "root", str(code_uid))
        and eff["cmd"] == p.warden_command(code_uid),
        f"user {eff['user'] or '(image default)'}, command {' '.join(eff['cmd'])[:120]}",
        "the code could signal or impersonate its collector: keep SandboxPolicy's "
        "user and command (an engine default or plugin changed them)",
    )
    report.check(
        "no network",
        eff["network_mode"] == "none" and eff["network_disabled"],
        f"network_mode={eff['network_mode']}, network_disabled={eff['network_disabled']}",
        "the engine did not apply network_mode=none and network_disabled: check daemon.json "
        "and any authorization plugin",
    )
    report.check(
        "not privileged, no devices",
        not eff["privileged"] and not eff["devices"],
        f"privileged={eff['privileged']}, devices={len(eff['devices'])}",
        "an engine default or plugin adds privileges: remove it from daemon.json",
    )
    report.check(
        "all capabilities dropped",
        "ALL" in [c.upper() for c in eff["cap_drop"]] and not eff["cap_add"],
        f"cap_drop={eff['cap_drop']}, cap_add={eff['cap_add']}",
        "the engine changed the capability set: check daemon.json default capabilities",
    )
    opts = " ".join(eff["security_opt"])
    ours = p.runtime != "runc" or f"seccomp={PROFILE_HASH}" in opts
    report.check(
        "no-new-privileges, the project's seccomp profile (runc)",
        "no-new-privileges" in opts and "seccomp=unconfined" not in opts and ours,
        f"security_opt={eff['security_opt']}",
        "keep SandboxPolicy's security options: no-new-privileges and, under runc, "
        "seccomp=<app/sandbox/seccomp.json> (an engine default or plugin changed them)",
    )
    report.check(
        "read-only root filesystem",
        eff["readonly_rootfs"] is True,
        f"readonly_rootfs={eff['readonly_rootfs']}",
        "the engine did not apply read_only: upgrade Docker",
    )
    report.check(
        "memory limited, no swap",
        eff["memory"] == p.memory_bytes and eff["memory_swap"] == p.memory_bytes,
        f"memory={eff['memory']}, memory_swap={eff['memory_swap']}",
        "the engine ignores memory limits: enable the memory cgroup "
        "(cgroup_enable=memory swapaccount=1 on the kernel command line)",
    )
    report.check(
        "cpu and process limits",
        eff["nano_cpus"] == int(p.cpus * 1e9) and eff["pids_limit"] == p.engine_pids_limit(),
        f"nano_cpus={eff['nano_cpus']}, pids_limit={eff['pids_limit']}",
        "the engine ignores cpu/pids limits: enable the cpu and pids cgroups",
    )
    report.check(
        "host namespaces not shared",
        not any(eff[k] == "host" for k in ("pid_mode", "ipc_mode", "userns_mode")),
        f"pid={eff['pid_mode'] or 'private'}, ipc={eff['ipc_mode']}, "
        f"userns={eff['userns_mode'] or 'default'}",
        "an engine default shares host namespaces: remove it from daemon.json",
    )
    mounts = eff["mounts"]
    inputs = (p.input_mount, p.input_mount + "/")
    # Besides them, the policy's own /etc/hosts (loopback names), read-only, and nothing else.
    hosts = None
    if p.hosts_file is not None:
        hosts = {
            "type": "bind",
            "source": p.host_path(p.hosts_file),
            "target": "/etc/hosts",
            "read_only": True,
        }
    unexpected = [
        m
        for m in mounts
        if m != hosts
        and (
            not (m["read_only"] and (m["target"] or "").startswith(inputs))
            or (m["target"] or "").count("/") > p.input_mount.count("/") + 1
        )
    ]
    report.check(
        "only the run's input files are mounted, read-only",
        not unexpected,
        ", ".join(f"{m['source']}->{m['target']}" for m in mounts) or "none",
        "remove the extra mounts (never mount the Docker socket into a sandbox)",
    )
    tmpfs_ok = all(
        "noexec" in opts and "nosuid" in opts and "size=" in opts and "nr_inodes=" in opts
        for opts in eff["tmpfs"].values()
    ) and set(eff["tmpfs"]) == set(p.tmpfs(p.code_uid_first))  # /tmp, outputs (, session state)
    report.check(
        "/tmp, output (and state) are noexec tmpfs bounded in bytes and inodes",
        tmpfs_ok,
        json.dumps(eff["tmpfs"]),
        "the engine changed the tmpfs options: upgrade Docker",
    )
    report.check(
        "engine logging off",
        eff["log_driver"] == "none",
        f"log driver {eff['log_driver']}",
        "output must not pile up on the host: the policy sets the 'none' log driver",
    )
    report.check(
        "container environment empty",
        not eff["environment"]
        or set(eff["environment"])
        <= {"PATH", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE", "MPLBACKEND"} | ENGINE_ENVIRONMENT,
        ", ".join(eff["environment"]),
        "the image or engine adds environment variables: remove them",
    )
