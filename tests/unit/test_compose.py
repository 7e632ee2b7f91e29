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
    for name in (
        "compose.yaml",
        "compose.direct-socket.yaml",
        "compose.secrets.yaml",
        "Dockerfile",
    ):
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


def test_logs_are_rotated_and_the_bot_waits_for_healthy_services(project):
    services = rendered(project, "compose.yaml")["services"]
    for name in ("bot", "mongo", "socket-proxy"):
        logging = services[name]["logging"]
        assert logging["driver"] == "json-file"
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 2
    depends = services["bot"]["depends_on"]
    assert depends["mongo"]["condition"] == "service_healthy"
    assert depends["socket-proxy"]["condition"] == "service_healthy"
    assert "healthcheck" in services["socket-proxy"]


def test_secrets_can_come_from_files(project):
    (project / "secrets").mkdir()
    (project / "secrets" / "discord_token").write_text("token\n")
    (project / "secrets" / "openai_api_key").write_text("key\n")
    config = rendered(project, "compose.yaml", "compose.secrets.yaml")
    bot = config["services"]["bot"]
    assert bot["environment"]["DISCORD_TOKEN_FILE"] == "/run/secrets/discord_token"
    assert bot["environment"]["OPENAI_API_KEY_FILE"] == "/run/secrets/openai_api_key"
    names = {s if isinstance(s, str) else s["source"] for s in bot["secrets"]}
    assert names == {"discord_token", "openai_api_key"}
    assert set(config["secrets"]) == {"discord_token", "openai_api_key"}
