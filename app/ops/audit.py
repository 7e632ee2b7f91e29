"""What `python -m app audit` checks: the policy as the ENGINE applies it, and the image's state.

A probe container is created from SandboxPolicy exactly as a run's would be (same labels, so
leftovers are reaped), inspected, and examined from inside by app/ops/image_probe.py running
as the code's uid. Every check carries the fix to name when it fails.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field

from app.layout import DataLayout
from app.ops.image import HASH_LABEL
from app.ops.sbom import SbomError, probe_command, write_sbom
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineError
from app.sandbox.policy import SandboxPolicy

# Writable at run time on purpose: the output folder, /tmp, and the engine's IPC mounts of the
# run's private IPC namespace: /dev/shm (a size-bounded, noexec tmpfs that multiprocessing needs)
# and /dev/mqueue (kernel-capped by RLIMIT_MSGQUEUE). Anything else writable is a finding.
ALLOWED_WRITABLE = ("/tmp", "/dev/shm", "/dev/mqueue")
# Variables the engine itself gives every process of a container.
ENGINE_ENVIRONMENT = {"HOSTNAME", "HOME"}
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL)", re.I)
SECRET_VALUE = re.compile(
    r"(://[^/\s:@]+:[^/\s@]+@"  # credentials in a URL
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # API keys
    r"|-----BEGIN [A-Z ]*PRIVATE KEY"
    r"|\b(token|secret|password|passwd|api_?key)=\S+)",
    re.I,
)
PROBE_TIMEOUT = 120.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class AuditReport:
    image: str
    runtime: str
    effective_policy: dict = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    python_packages: list[dict] = field(default_factory=list)
    sbom: str | None = None
    service: dict = field(default_factory=dict)
    """With SANDBOX_SERVICE_URL: the service's address, policy and time limit."""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, name: str, ok: bool, detail: str, fix: str) -> None:
        self.checks.append(Check(name, bool(ok), detail, "" if ok else fix))

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
        "privileged": host.get("Privileged"),
        "cap_add": host.get("CapAdd") or [],
        "cap_drop": host.get("CapDrop") or [],
        "security_opt": host.get("SecurityOpt") or [],
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
    }


class SandboxAudit:
    def __init__(self, policy: SandboxPolicy, engine: DockerEngine, layout: DataLayout) -> None:
        self.policy = policy
        self.engine = engine
        self.layout = layout

    def run(self) -> AuditReport:
        report = AuditReport(image=self.policy.image, runtime=self.policy.runtime)
        image = self.engine.image_inspect(self.policy.image)
        if image is None:
            report.check(
                "image present",
                False,
                f"{self.policy.image} is missing",
                "build it: python -m app image build",
            )
            return report
        self._image_checks(report, image, self.engine.image_history(self.policy.image))
        inspect, inside = self._probe()
        report.effective_policy = effective_policy(inspect)
        self._engine_checks(report, report.effective_policy)
        self._runtime_checks(report, inside)
        report.python_packages = [
            {"name": p["name"], "version": p["version"]} for p in inside.get("python_packages", [])
        ]
        report.check(
            "python packages listed",
            bool(report.python_packages),
            f"{len(report.python_packages)} distributions with versions",
            "the image has no readable Python environment at /opt/venv: rebuild it",
        )
        self._sbom_check(report, image)
        return report

    # The probe container

    def _probe(self) -> tuple[dict, dict]:
        work = self.layout.new_tmp_dir("audit-")
        (work / "input").mkdir()
        (work / "input" / "probe.txt").write_text("audit")
        args = self.policy.container_args(
            run_id=f"audit-{uuid.uuid4().hex[:6]}", user_id="audit", input_dir=work / "input"
        )
        container_id = self.engine.create_and_start(args)
        try:
            inspect = self.engine.inspect(container_id)
            inside = self._exec_probe(container_id)
        finally:
            self.engine.remove(container_id)
            shutil.rmtree(work, ignore_errors=True)
        return inspect, inside

    def _exec_probe(self, container_id: str) -> dict:
        runner = self.policy.runner_exec()
        stream = self.engine.exec_attach(
            container_id,
            cmd=probe_command("audit"),
            user=runner["user"],
            environment=runner["environment"],
            workdir=runner["workdir"],
        )
        out, err = bytearray(), bytearray()
        try:
            for kind, chunk in stream.frames(time.monotonic() + PROBE_TIMEOUT):
                (out if kind == 1 else err).extend(chunk)
        finally:
            stream.close()
        try:
            return json.loads(bytes(out))
        except ValueError:
            raise EngineError(
                "the audit probe failed inside the container: "
                f"{bytes(err)[-400:].decode(errors='replace')}"
            ) from None

    # Checks

    def _image_checks(self, report: AuditReport, image: dict, layers: list[dict]) -> None:
        config = image.get("Config") or {}
        user = (config.get("User") or "").split(":")[0]
        report.check(
            "image default user is not root",
            user not in ("", "0", "root"),
            f"USER {config.get('User') or '(none: root)'}",
            "end sandbox-image/Dockerfile with a non-root USER and rebuild",
        )
        env = config.get("Env") or []
        leaked = [
            e.split("=", 1)[0]
            for e in env
            if SECRET_NAME.search(e.split("=", 1)[0]) or SECRET_VALUE.search(e)
        ]
        report.check(
            "no secrets in the image environment",
            not leaked,
            ", ".join(leaked) or f"{len(env)} variables, none secret-like",
            "remove these ENV lines from the Dockerfile (pass secrets at build time "
            "only through build secrets) and rebuild",
        )
        history = [h.get("CreatedBy") or "" for h in layers]
        suspicious = [line[:120] for line in history if SECRET_VALUE.search(line)]
        report.check(
            "no secrets in the image history",
            not suspicious,
            "; ".join(suspicious) or f"{len(history)} layers, nothing secret-like",
            "a build argument or command carried a credential (e.g. a package index "
            "URL with user:password): rebuild without it, and rotate the credential",
        )

    def _engine_checks(self, report: AuditReport, eff: dict) -> None:
        p = self.policy
        expected_runtime = p.runtime
        report.check(
            "runtime",
            (eff["runtime"] or "runc") == expected_runtime,
            f"{eff['runtime']}",
            f"register {expected_runtime} with the engine or set "
            "SANDBOX_RUNTIME (docs/security.md, gVisor)",
        )
        main_uid = str(eff["user"] or "").split(":")[0]
        report.check(
            "main process is the output warden, not the code's uid",
            main_uid not in ("", "0", "root", str(p.code_uid)) and eff["cmd"] == p.warden_command(),
            f"user {eff['user'] or '(image default)'}, command {' '.join(eff['cmd'])[:120]}",
            "the code could signal or impersonate its collector: keep SandboxPolicy's "
            "user and command (an engine default or plugin changed them)",
        )
        report.check(
            "no network",
            eff["network_mode"] == "none",
            f"network_mode={eff['network_mode']}",
            "the engine did not apply network_mode=none: check daemon.json and any "
            "authorization plugin",
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
        report.check(
            "no-new-privileges, seccomp confined",
            "no-new-privileges" in opts and "seccomp=unconfined" not in opts,
            f"security_opt={eff['security_opt']}",
            "remove seccomp=unconfined / add no-new-privileges (daemon.json "
            '"no-new-privileges": true is a good default)',
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
        unexpected = [m for m in mounts if not (m["target"] == p.input_mount and m["read_only"])]
        report.check(
            "only the run's input folder is mounted, read-only",
            not unexpected,
            ", ".join(f"{m['source']}->{m['target']}" for m in mounts) or "none",
            "remove the extra mounts (never mount the Docker socket into a sandbox)",
        )
        tmpfs_ok = all(
            "noexec" in opts and "nosuid" in opts and "size=" in opts
            for opts in eff["tmpfs"].values()
        ) and set(eff["tmpfs"]) == {"/tmp", p.output_mount}
        report.check(
            "/tmp and output are bounded noexec tmpfs",
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
            <= {"PATH", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE", "MPLBACKEND"}
            | ENGINE_ENVIRONMENT,
            ", ".join(eff["environment"]),
            "the image or engine adds environment variables: remove them",
        )

    def _runtime_checks(self, report: AuditReport, inside: dict) -> None:
        p = self.policy
        caps = inside.get("capabilities", {})
        report.check(
            "code runs as non-root without capabilities",
            inside.get("uid") not in (0, None)
            and all(v.strip("0") == "" for v in caps.values() if v),
            f"uid {inside.get('uid')}, {caps}",
            "the image or engine grants capabilities: rebuild the image, check daemon.json",
        )
        report.check(
            "NoNewPrivs set for the code",
            inside.get("no_new_privs") == 1,
            f"prctl(PR_GET_NO_NEW_PRIVS)={inside.get('no_new_privs')}",
            "the engine did not apply no-new-privileges: upgrade Docker",
        )
        report.check(
            "only a loopback interface",
            inside.get("interfaces") == ["lo"],
            ", ".join(inside.get("interfaces", [])),
            "network_mode must be none",
        )
        report.check(
            "no setuid/setgid files",
            not inside.get("setuid_files"),
            ", ".join(inside.get("setuid_files", [])[:10]) or "none",
            "rebuild the image (its Dockerfile strips setuid/setgid bits); a custom "
            "base must not add them back",
        )
        allowed = ALLOWED_WRITABLE + (p.output_mount,)

        def outside(paths):
            return [x for x in paths if not any(x == a or x.startswith(a + "/") for a in allowed)]

        ww = outside(inside.get("world_writable", []))
        report.check(
            "no world-writable paths outside /tmp and the output",
            not ww,
            ", ".join(ww[:10]) or f"allowed: {', '.join(allowed)}",
            "chmod o-w these paths in the Dockerfile and rebuild",
        )
        writable = outside(inside.get("writable", []))
        report.check(
            "writable at run time: only the output folder and /tmp",
            not writable,
            ", ".join(writable[:10]) or f"only {', '.join(allowed)}",
            "keep read_only=True and the tmpfs mounts of SandboxPolicy; fix ownership "
            "of these paths in the image",
        )
        tools = inside.get("forbidden_tools", [])
        report.check(
            "no sudo, su or container tools",
            not tools,
            ", ".join(tools) or "none",
            "remove them in the Dockerfile (it deletes su and sudo) and rebuild",
        )
        sockets = inside.get("sockets", [])
        report.check(
            "no Docker socket or other sockets",
            not sockets,
            ", ".join(sockets) or "none",
            "never mount the Docker socket (or any socket) into a sandbox",
        )
        extra_env = sorted(
            set(inside.get("environment", [])) - set(p.code_environment()) - ENGINE_ENVIRONMENT
        )
        report.check(
            "code environment is the allow-list",
            not extra_env,
            ", ".join(extra_env) or f"{len(inside.get('environment', []))} variables",
            "the environment reaching the code must be SandboxPolicy.code_environment()",
        )

    def _sbom_check(self, report: AuditReport, image: dict) -> None:
        """The image's SBOM exists (written now if the build did not) and matches the image."""
        source_hash = ((image.get("Config") or {}).get("Labels") or {}).get(HASH_LABEL, "")
        tags = [
            t for t in image.get("RepoTags") or [] if source_hash and t.endswith(":" + source_hash)
        ]
        reference = tags[0] if tags else self.policy.image
        try:
            path = write_sbom(self.engine, reference, self.layout.sbom)
            document = json.loads(path.read_text())
        except (SbomError, EngineError, OSError, ValueError) as exc:
            report.check(
                "SBOM matches the image",
                False,
                str(exc)[:300],
                "python -m app image build writes it; see docs/security.md, Verifying an image",
            )
            return
        report.sbom = str(path)
        listed = {
            c["purl"]
            for c in document.get("components", [])
            if c.get("purl", "").startswith("pkg:pypi/")
        }
        installed = {f"pkg:pypi/{p['name'].lower()}@{p['version']}" for p in report.python_packages}
        differ = sorted(listed ^ installed)
        report.check(
            "SBOM matches the image",
            not differ,
            f"{path} ({len(listed)} Python packages)"
            if not differ
            else "differs: " + ", ".join(differ[:10]),
            f"the SBOM is stale: delete {path} and run python -m app image build",
        )
