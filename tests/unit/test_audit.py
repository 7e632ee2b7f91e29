"""The audit's verdicts on engine reports, images and the host, without an engine."""

from dataclasses import replace
from datetime import date

import pytest

from app.ops import host_checks
from app.ops.audit import AuditReport, SandboxAudit, effective_policy
from app.ops.engine_view import engine_checks
from app.ops.sbom import cyclonedx, sbom_path
from app.sandbox.names import CODE_UID_LABEL
from app.sandbox.policy import SECCOMP_PROFILE, SandboxPolicy

POLICY = SandboxPolicy(image="img:1", memory_bytes=2**30, pids_limit=128)
UID = POLICY.code_uid_first + 7
KEEPER = f"{POLICY.keeper_uid}:{POLICY.keeper_uid}"
CODE = f"{UID}:{UID}"


def good_inspect() -> dict:
    return {
        "Config": {
            "User": KEEPER,
            "Cmd": POLICY.warden_command(UID),
            "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"],
            "Labels": {CODE_UID_LABEL: str(UID)},
            "NetworkDisabled": True,
        },
        "HostConfig": {
            "Runtime": "runc",
            "NetworkMode": "none",
            "Privileged": False,
            "CapAdd": None,
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges", f"seccomp={SECCOMP_PROFILE}"],
            "ReadonlyRootfs": True,
            "Memory": 2**30,
            "MemorySwap": 2**30,
            "NanoCpus": 10**9,
            "PidsLimit": 128,
            "Tmpfs": POLICY.tmpfs(UID),
            "LogConfig": {"Type": "none"},
            "IpcMode": "private",
        },
        "Mounts": [
            {
                "Type": "bind",
                "Source": "/d/in/f1.csv",
                "Destination": "/mnt/data/f1.csv",
                "RW": False,
            }
        ],
    }


def failures(inspect: dict) -> dict[str, str]:
    report = AuditReport(image="img:1", runtime="runc")
    engine_checks(report, POLICY, effective_policy(inspect))
    return {c.name: c.fix for c in report.checks if not c.ok}


def test_a_hardened_container_passes_every_engine_check():
    assert failures(good_inspect()) == {}


def test_the_seccomp_profile_is_shown_by_its_hash_not_its_text():
    shown = effective_policy(good_inspect())["security_opt"]
    assert shown[0] == "no-new-privileges"
    assert shown[1].endswith("(the project's profile)") and len(shown[1]) < 80


def test_an_engine_network_namespace_fails_even_for_network_none():
    bad = good_inspect()
    del bad["Config"]["NetworkDisabled"]
    assert list(failures(bad)) == ["no network"]


def test_only_the_policys_own_hosts_file_may_be_mounted_beside_the_inputs(tmp_path):
    policy = replace(POLICY, data_dir=tmp_path, hosts_file=tmp_path / "sandbox-etc" / "hosts")
    ours = {"Type": "bind", "Source": str(tmp_path / "sandbox-etc" / "hosts")}
    ours |= {"Destination": "/etc/hosts", "RW": False}

    def failed(*mounts: dict) -> list[str]:
        inspect = good_inspect()
        inspect["Mounts"] += mounts
        report = AuditReport(image="img:1", runtime="runc")
        engine_checks(report, policy, effective_policy(inspect))
        return [c.name for c in report.checks if not c.ok]

    assert failed(ours) == []
    check = "only the run's input files are mounted, read-only"
    assert failed({**ours, "RW": True}) == [check]
    assert failed({**ours, "Source": "/etc/shadow"}) == [check]
    # A policy without a hosts file of its own allows no mount at /etc/hosts.
    assert list(failures({**good_inspect(), "Mounts": [ours]})) == [check]


def test_a_main_process_under_the_codes_uid_fails():
    bad = good_inspect()
    bad["Config"]["User"] = CODE
    assert list(failures(bad)) == ["main process is the output warden, not the code's uid"]
    other = good_inspect()
    other["Config"]["Cmd"] = ["sleep", "infinity"]
    assert list(failures(other)) == ["main process is the output warden, not the code's uid"]


def test_a_container_without_its_own_code_uid_fails():
    bad = good_inspect()
    bad["Config"]["Labels"] = {}
    assert "one identity per run: the code's uid is the container's own" in failures(bad)


@pytest.mark.parametrize(
    "options",
    [
        ["no-new-privileges"],  # Docker's default profile: io_uring allowed on Docker < 25
        ["no-new-privileges", "seccomp=unconfined"],
        ["no-new-privileges", 'seccomp={"defaultAction": "SCMP_ACT_ALLOW"}'],
    ],
)
def test_any_seccomp_profile_but_the_projects_fails_under_runc(options):
    bad = good_inspect()
    bad["HostConfig"]["SecurityOpt"] = options
    assert list(failures(bad)) == ["no-new-privileges, the project's seccomp profile (runc)"]


def test_tmpfs_without_an_inode_cap_fails():
    bad = good_inspect()
    bad["HostConfig"]["Tmpfs"] = {
        k: v.replace(f",nr_inodes={POLICY.output_inodes}", "").replace(
            f",nr_inodes={POLICY.tmp_inodes}", ""
        )
        for k, v in POLICY.tmpfs(UID).items()
    }
    assert list(failures(bad)) == [
        "/tmp, output (and state) are noexec tmpfs bounded in bytes and inodes"
    ]


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
        "no-new-privileges, the project's seccomp profile (runc)",
        "memory limited, no swap",
        "host namespaces not shared",
        "only the run's input files are mounted, read-only",
    }
    assert "Docker socket" in failed["only the run's input files are mounted, read-only"]
    assert all(fix for fix in failed.values())


def kernel_failures(inside: dict, runtime: str = "runc") -> set[str]:
    report = AuditReport(image="img:1", runtime=runtime)
    policy = SandboxPolicy(image="img:1", runtime=runtime)
    SandboxAudit(policy, engine=None, layout=None)._kernel_surface(report, inside)
    return {c.name for c in report.checks if not c.ok}


def test_io_uring_or_no_seccomp_filter_fails_under_runc():
    good = {"seccomp": "2", "io_uring_setup": "refused (errno 1)", "kernel_release": "6.1.0"}
    assert kernel_failures(good) == set()
    assert kernel_failures({**good, "io_uring_setup": "ALLOWED"}) == {"io_uring is refused"}
    assert kernel_failures({**good, "seccomp": "0"}) == {"seccomp filter in force for the code"}


def test_under_gvisor_the_audit_checks_that_gvisors_kernel_serves_the_code():
    inside = {"seccomp": "0", "io_uring_setup": "ALLOWED", "kernel_release": "4.4.0"}
    assert kernel_failures(inside, "runsc") == set()
    assert kernel_failures({**inside, "kernel_release": "6.1.0"}, "runsc") == {
        "the code's syscalls reach gVisor's kernel, not the host's"
    }


@pytest.mark.parametrize(
    ("component", "version", "cves"),
    [
        ("runc", "1.1.5+ds1-1+deb12u1", {"CVE-2024-21626", "CVE-2025-31133", "CVE-2025-52565"}),
        ("runc", "v1.1.12-0-g51d5e94", {"CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"}),
        ("runc", "1.2.8", set()),
        ("runc", "1.3.2", {"CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"}),
        ("runc", "1.3.3", set()),
        ("containerd", "1.4.2", {"CVE-2020-15257"}),
        ("containerd", "1.6.20~ds1-1+deb12u3", set()),
        ("kernel", "5.10.101", {"CVE-2022-0847"}),
        ("kernel", "5.10.102", set()),
        ("kernel", "6.18.44-fc-v657", set()),
        ("kernel", "not a version", set()),
    ],
)
def test_versions_are_matched_against_the_known_escapes(component, version, cves):
    found = {entry["cve"] for entry in host_checks.known_escapes(component, version)}
    assert found >= cves and (cves or not found)


def test_every_known_escape_names_its_source():
    import json

    table = json.loads(host_checks.KNOWN_ESCAPES.read_text())
    for component in ("runc", "containerd", "kernel"):
        for entry in table[component]:
            assert entry["cve"].startswith("CVE-") and entry["source"].startswith("https://")
            assert host_checks.version_tuple(entry["below"])


def test_an_old_runc_is_a_warning_that_does_not_fail_the_audit():
    report = AuditReport(image="img:1", runtime="runc")
    for finding in host_checks.version_findings({"kernel": "6.1.0", "runc": "1.1.5"}):
        report.add(finding)
    runc = next(c for c in report.checks if c.name.startswith("runc"))
    assert not runc.ok and runc.warning and "CVE-2024-21626" in runc.detail
    assert "distribution" in runc.fix and report.ok


def test_an_old_runsc_is_a_warning_with_its_age():
    found = host_checks.version_findings(
        {"kernel": "6.1.0", "runsc": "0.0~20221219.0"}, today=date(2026, 12, 1)
    )
    runsc = next(f for f in found if f.name.startswith("runsc"))
    assert not runsc.ok and runsc.warning and "2022-12-19" in runsc.detail


def test_a_core_pattern_pipe_is_a_warning_with_the_fix():
    piped = host_checks.core_pattern_finding("|/usr/share/apport/apport -p%p -s%s")
    assert not piped.ok and piped.warning and "core_pattern=core" in piped.fix
    assert host_checks.core_pattern_finding("core").ok


def test_an_extra_package_index_is_a_warning():
    assert not host_checks.extra_index_finding("https://pkgs.corp/simple").ok
    assert host_checks.extra_index_finding("").ok


def test_userns_remapping_is_reported():
    on = host_checks.userns_finding({"SecurityOptions": ["name=seccomp", "name=userns"]})
    assert on.ok and "remapped" in on.detail
    assert "not remapped" in host_checks.userns_finding({"SecurityOptions": []}).detail


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
