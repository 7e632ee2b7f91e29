"""The self-host stack file validates and keeps its security promises."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if shutil.which("docker") and probe.returncode == 0:
        return ["docker", "compose"]
    pytest.skip("neither docker-compose nor the docker compose plugin is installed")


@pytest.fixture
def project(tmp_path):
    """The stack as a user has it: compose files, build contexts and a .env from the example."""
    for name in ("compose.yaml", "compose.direct-socket.yaml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "sandbox-image").symlink_to(ROOT / "sandbox-image")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    return tmp_path


def rendered(project, *files) -> dict:
    args = [arg for f in files for arg in ("-f", f)]
    done = subprocess.run(
        [*compose_command(), *args, "config"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_validates_and_only_the_proxy_sees_the_socket(project):
    config = rendered(project, "compose.yaml")
    services = config["services"]
    assert {"bot", "mongo", "socket-proxy"} <= set(services)
    bot = services["bot"]
    assert bot["environment"]["DOCKER_HOST"] == "tcp://socket-proxy:2375"
    assert bot["environment"]["MONGODB_URI"] == "mongodb://mongo:27017"
    assert not any("docker.sock" in str(v) for v in bot.get("volumes", []))
    # the data dir is mounted at the same host path that HOST_DATA_DIR names
    host_dir = bot["environment"]["HOST_DATA_DIR"]
    assert any(
        str(v).startswith(host_dir) or (isinstance(v, dict) and v.get("source") == host_dir)
        for v in bot["volumes"]
    )
    for name in ("bot", "mongo", "socket-proxy"):
        assert services[name]["restart"] == "unless-stopped"
        assert "healthcheck" in services[name]
    assert config["networks"]["docker-api"]["internal"] is True
    assert "docker-api" not in services["mongo"].get("networks", {})


def test_direct_socket_option_validates(project):
    bot = rendered(project, "compose.yaml", "compose.direct-socket.yaml")["services"]["bot"]
    assert bot["environment"]["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    assert any("docker.sock" in str(v) for v in bot["volumes"])
