"""The audit's verdicts on engine reports and images, without an engine."""

from app.ops.audit import AuditReport, SandboxAudit, effective_policy
from app.ops.sbom import cyclonedx, sbom_path
from app.sandbox.policy import SandboxPolicy

POLICY = SandboxPolicy(image="img:1", memory_bytes=2**30, pids_limit=128)
KEEPER = f"{POLICY.keeper_uid}:{POLICY.keeper_uid}"
CODE = f"{POLICY.code_uid}:{POLICY.code_uid}"


def good_inspect() -> dict:
    return {
        "Config": {
            "User": KEEPER,
            "Cmd": POLICY.warden_command(),
            "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
        },
        "HostConfig": {
            "Runtime": "runc",
            "NetworkMode": "none",
            "Privileged": False,
            "CapAdd": None,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "ReadonlyRootfs": True,
            "Memory": 2**30,
            "MemorySwap": 2**30,
            "NanoCpus": 10**9,
            "PidsLimit": 128,
            "Tmpfs": POLICY.tmpfs(),
            "LogConfig": {"Type": "none"},
            "IpcMode": "private",
        },
        "Mounts": [{"Type": "bind", "Source": "/d/in", "Destination": "/mnt/data", "RW": False}],
    }


def failures(inspect: dict) -> dict[str, str]:
    report = AuditReport(image="img:1", runtime="runc")
    SandboxAudit(POLICY, engine=None, layout=None)._engine_checks(report, effective_policy(inspect))
    return {c.name: c.fix for c in report.checks if not c.ok}


def test_a_hardened_container_passes_every_engine_check():
    assert failures(good_inspect()) == {}


def test_a_main_process_under_the_codes_uid_fails():
    bad = good_inspect()
    bad["Config"]["User"] = CODE
    assert list(failures(bad)) == ["main process is the output warden, not the code's uid"]
    other = good_inspect()
    other["Config"]["Cmd"] = ["sleep", "infinity"]
    assert list(failures(other)) == ["main process is the output warden, not the code's uid"]


def test_a_docker_socket_mount_and_privileges_fail_with_the_fix_named():
    bad = good_inspect()
    bad["HostConfig"].update(
        Privileged=True,
        NetworkMode="bridge",
        CapAdd=["SYS_ADMIN"],
        MemorySwap=-1,
        SecurityOpt=["seccomp=unconfined"],
        PidMode="host",
    )
    bad["Mounts"].append(
        {
            "Type": "bind",
            "Source": "/var/run/docker.sock",
            "Destination": "/var/run/docker.sock",
            "RW": True,
        }
    )
    failed = failures(bad)
    assert set(failed) == {
        "no network",
        "not privileged, no devices",
        "all capabilities dropped",
        "no-new-privileges, seccomp confined",
        "memory limited, no swap",
        "host namespaces not shared",
        "only the run's input folder is mounted, read-only",
    }
    assert "Docker socket" in failed["only the run's input folder is mounted, read-only"]
    assert all(fix for fix in failed.values())


class FakeImage:
    def __init__(self, env, history, user=str(POLICY.keeper_uid)):
        self.attrs = {"Config": {"Env": env, "User": user}}
        self._history = [{"CreatedBy": line} for line in history]

    def history(self):
        return self._history


def image_failures(image) -> set[str]:
    report = AuditReport(image="img:1", runtime="runc")
    SandboxAudit(POLICY, engine=None, layout=None)._image_checks(
        report, image.attrs, image.history()
    )
    return {c.name for c in report.checks if not c.ok}


def test_secrets_in_image_environment_or_history_and_a_root_user_fail():
    clean = FakeImage(["PATH=/bin", "LANG=C.UTF-8"], ["RUN pip install -r requirements.txt"])
    assert image_failures(clean) == set()
    leaky = FakeImage(
        ["OPENAI_API_KEY=sk-abcdefabcdefabcdefabcdef"],
        ["|1 PIP_INDEX_URL=https://build:hunter2@pypi.corp/simple RUN pip install x"],
        user="",
    )
    assert image_failures(leaky) == {
        "image default user is not root",
        "no secrets in the image environment",
        "no secrets in the image history",
    }


def test_cyclonedx_document_lists_python_and_debian_packages(tmp_path):
    inventory = {
        "python": "3.11.2",
        "python_packages": [{"name": "pandas", "version": "2.2.3", "license": "BSD"}],
        "debian_packages": [{"name": "libc6", "version": "2.36-9"}],
    }
    doc = cyclonedx("codeinterp-sandbox:abc", "sha256:123", inventory)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.5")
    assert doc["serialNumber"].startswith("urn:uuid:")
    assert [c["purl"] for c in doc["components"]] == [
        "pkg:pypi/pandas@2.2.3",
        "pkg:deb/debian/libc6@2.36-9",
    ]
    assert doc["metadata"]["component"]["version"] == "sha256:123"
    assert (
        sbom_path(tmp_path, "reg:5000/team/img:abc") == tmp_path / "reg:5000_team_img-abc.cdx.json"
    )
