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

from app.layout import DataLayout
from app.ops import host_checks
from app.ops.engine_view import (
    ENGINE_ENVIRONMENT,
    AuditReport,
    effective_policy,
    engine_checks,
)
from app.ops.image import HASH_LABEL
from app.ops.sbom import SbomError, probe_command, write_sbom
from app.sandbox.docker_engine import DockerEngine
from app.sandbox.engine import EngineError
from app.sandbox.policy import SandboxPolicy
from app.sandbox.starter import ContainerStarter

# Writable at run time on purpose: the output folder, /tmp, and the engine's IPC mounts of the
# run's private IPC namespace: /dev/shm (a size-bounded, noexec tmpfs that multiprocessing needs)
# and /dev/mqueue (kernel-capped by RLIMIT_MSGQUEUE). Anything else writable is a finding.
ALLOWED_WRITABLE = ("/tmp", "/dev/shm", "/dev/mqueue")
SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSW|API_?KEY|ACCESS_?KEY|PRIVATE|CREDENTIAL)", re.I)
SECRET_VALUE = re.compile(
    r"(://[^/\s:@]+:[^/\s@]+@"  # credentials in a URL
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # API keys
    r"|-----BEGIN [A-Z ]*PRIVATE KEY"
    r"|\b(token|secret|password|passwd|api_?key)=\S+)",
    re.I,
)
PROBE_TIMEOUT = 120.0
# The kernel release gVisor's kernel presents to the code.
GVISOR_RELEASE = "4.4.0"


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
        engine_checks(report, self.policy, report.effective_policy)
        self._runtime_checks(report, inside)
        self._host_checks(report)
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
        run_id = f"audit-{uuid.uuid4().hex[:6]}"

        def args_for(code_uid: int) -> dict:
            return self.policy.container_args(
                run_id=run_id,
                user_id="audit",
                code_uid=code_uid,
                input_dir=work / "input",
                input_files=["probe.txt"],
            )

        container_id, attached, code_uid = ContainerStarter(
            self.policy, self.engine
        ).create_blocking(args_for)
        try:  # the attach stays open: the warden ends the sandbox when it closes
            inspect = self.engine.inspect(container_id)
            inside = self._exec_probe(container_id, code_uid)
        finally:
            attached.close()
            self.engine.remove(container_id)
            shutil.rmtree(work, ignore_errors=True)
        return inspect, inside

    def _exec_probe(self, container_id: str, code_uid: int) -> dict:
        runner = self.policy.runner_exec(code_uid)
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
        self._kernel_surface(report, inside)
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
        # With session state, its tmpfs is the code's too (the new snapshot, sent by the warden).
        allowed = ALLOWED_WRITABLE + (p.output_mount,) + ((p.state_mount,) if p.keeps_state else ())

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
            "writable at run time: only the output folder, /tmp (and the state folder)",
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

    def _kernel_surface(self, report: AuditReport, inside: dict) -> None:
        """Under runc the code must be under a seccomp filter that refuses io_uring. Under gVisor
        the code's syscalls are served by gVisor's own kernel (io_uring included, in its own
        implementation), and runsc confines that kernel with its own filter on the host: the
        audit then checks that the probe really runs on gVisor's kernel."""
        uring = str(inside.get("io_uring_setup", ""))
        if self.policy.runtime != "runc":
            report.check(
                "the code's syscalls reach gVisor's kernel, not the host's",
                inside.get("kernel_release") == GVISOR_RELEASE,
                f"kernel release {inside.get('kernel_release')}, io_uring_setup {uring}",
                "the probe did not run under gVisor: check SANDBOX_RUNTIME and daemon.json",
            )
            return
        report.check(
            "seccomp filter in force for the code",
            str(inside.get("seccomp")) == "2",
            f"Seccomp: {inside.get('seccomp')} (2 is filter mode)",
            "the engine did not apply the seccomp profile: check daemon.json (seccomp-profile, "
            "an authorization plugin) and that the kernel has CONFIG_SECCOMP_FILTER",
        )
        report.check(
            "io_uring is refused",
            uring.startswith("refused"),
            f"io_uring_setup {uring or 'not probed'}",
            "io_uring is the way of most kernelCTF container escapes: the project's seccomp "
            "profile refuses it; something replaced the profile (see the security options)",
        )

    def _host_checks(self, report: AuditReport) -> None:
        info, version = self.engine.info(), self.engine.version()
        report.versions = host_checks.engine_versions(info, version, self.policy.runtime)
        for finding in host_checks.version_findings(report.versions):
            report.add(finding)
        report.add(host_checks.core_pattern_finding())
        report.add(host_checks.userns_finding(info))
        report.add(host_checks.extra_index_finding(self.policy.package_extra_index_url))

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
