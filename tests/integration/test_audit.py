"""`python -m app audit` against the real engine and image, and the image's SBOM."""

import json
import os
import subprocess
import sys

from app.ops.sbom import write_sbom


def audit(settings, tmp_path, *args, **env):
    environment = {
        **os.environ,
        "DATA_DIR": str(settings.data_dir),
        "SANDBOX_INSTANCE": settings.sandbox_instance,
        "SANDBOX_MEMORY": str(settings.sandbox_memory),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "audit", *args],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_audit_reports_the_engines_view_and_passes(settings, engine, tmp_path):
    proc = audit(settings, tmp_path, "--json")
    report = json.loads(proc.stdout)
    failed = [c for c in report["checks"] if not c["ok"]]
    assert proc.returncode == 0 and report["ok"], failed
    policy = report["effective_policy"]
    assert (policy["network_mode"], policy["readonly_rootfs"], policy["cap_drop"]) == (
        "none",
        True,
        ["ALL"],
    )
    assert policy["memory"] == policy["memory_swap"] == settings.sandbox_memory
    # The probe's one input file and the sandbox's read-only /etc/hosts, nothing else.
    [hosts] = [m for m in policy["mounts"] if m["target"] == "/etc/hosts"]
    assert hosts["read_only"] and policy["network_disabled"] is True
    [mount] = [m for m in policy["mounts"] if m is not hosts]
    assert mount["target"] == "/mnt/data/probe.txt" and mount["read_only"]
    names = {check["name"] for check in report["checks"]}
    assert {
        "no setuid/setgid files",
        "writable at run time: only the output folder, /tmp (and the state folder)",
        "no sudo, su or container tools",
        "no secrets in the image history",
        "one identity per run: the code's uid is the container's own",
        "seccomp filter in force for the code",
        "io_uring is refused",
        "no core dump helper on the host",
        "runc has no known container escape",
    } <= names
    assert any("(the project's profile)" in o for o in policy["security_opt"])
    assert report["versions"]["kernel"] and report["versions"]["runc"]
    versions = {p["name"].lower(): p["version"] for p in report["python_packages"]}
    assert versions["pandas"] and versions["numpy"]
    assert (
        engine.list_containers({"label": [f"io.codeinterp.instance={settings.sandbox_instance}"]})
        == []
    )


def test_audit_text_names_the_fix_and_fails_for_a_missing_image(settings, engine, tmp_path):
    proc = audit(settings, tmp_path, SANDBOX_IMAGE="codeinterp-missing:nope")
    assert proc.returncode == 1
    assert (
        "FAIL  image present" in proc.stdout
        and "fix: build it: python -m app image build" in proc.stdout
    )


def test_sbom_lists_what_is_installed_in_the_image(settings, engine, tmp_path):
    path = write_sbom(engine, settings.sandbox_image, tmp_path / "sbom")
    doc = json.loads(path.read_text())
    assert doc["bomFormat"] == "CycloneDX"
    purls = [c["purl"] for c in doc["components"]]
    assert any(p.startswith("pkg:pypi/pandas@") for p in purls)
    assert any(p.startswith("pkg:deb/debian/") for p in purls)
