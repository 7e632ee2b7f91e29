"""Which sandbox a process gets, and the host paths a containerised service finds itself."""

from __future__ import annotations

import tarfile
from pathlib import Path

from app import host_paths
from app.config import Settings
from app.host_paths import mounted_host_path
from app.ops.image import APP_DIR, app_files, build_context, source_hash
from app.sandbox import SandboxRunner
from app.sandboxd import SandboxClient
from app.wiring import Components


def test_the_service_url_decides_which_sandbox_a_process_uses(tmp_path):
    local = Components(Settings(_env_file=None, data_dir=tmp_path))
    assert isinstance(local.sandbox, SandboxRunner) and not local.uses_service
    remote = Components(
        Settings(_env_file=None, data_dir=tmp_path, sandbox_service_url="unix:///run/s.sock")
    )
    assert isinstance(remote.sandbox, SandboxClient) and remote.uses_service
    assert "runner" not in remote.__dict__  # no runner, no engine, no Docker access built


def test_sandboxd_listens_on_the_layouts_socket_unless_told(tmp_path):
    parts = Components(Settings(_env_file=None, data_dir=tmp_path))
    assert str(parts.service_address()) == f"unix://{tmp_path.resolve()}/sandboxd/sandboxd.sock"
    told = Components(Settings(_env_file=None, sandboxd_listen="unix:///run/x/s.sock"))
    assert str(told.service_address()) == "unix:///run/x/s.sock"


class _Engine:
    def __init__(self, mounts):
        self.mounts = mounts

    def inspect(self, container_id):
        return {"Mounts": self.mounts}


def test_a_containerised_service_reads_the_host_path_of_its_data_from_the_engine(
    tmp_path, monkeypatch
):
    marker = tmp_path / ".dockerenv"
    monkeypatch.setattr(host_paths, "IN_CONTAINER", marker)
    mounts = [
        {"Destination": "/", "Source": "/wrong"},
        {"Destination": str(tmp_path), "Source": "/var/lib/docker/volumes/x/_data"},
        {"Destination": "/run/codeinterp", "Source": "/elsewhere"},
    ]
    assert mounted_host_path(_Engine(mounts), tmp_path / "data") is None  # not in a container
    marker.touch()
    found = mounted_host_path(_Engine(mounts), tmp_path / "data")
    assert found == Path("/var/lib/docker/volumes/x/_data/data")  # the innermost mount wins
    assert mounted_host_path(_Engine([]), tmp_path) is None


def test_the_app_image_context_has_the_sources_and_the_ca_files_where_the_dockerfile_reads_them(
    tmp_path,
):
    ca = tmp_path / "proxy.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with tarfile.open(
        fileobj=build_context(APP_DIR, [ca], app_files, "sandbox-image/extra-ca")
    ) as tar:
        names = set(tar.getnames())
    assert {"Dockerfile", "pyproject.toml", "README.md", "app/cli.py"} <= names
    assert "sandbox-image/Dockerfile" in names and "sandbox-image/extra-ca/ca-00.pem" in names
    assert not any("__pycache__" in n or n.startswith(("tests/", ".git")) for n in names)
    assert source_hash(APP_DIR, app_files) != source_hash()  # its own content hash
