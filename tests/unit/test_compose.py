"""The self-host stack file validates and keeps its security promises."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from app.config import Settings

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
        "stack.yaml",
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


def _mount_of(service: dict, target: str) -> str:
    """The source mounted at `target` (short or long volume syntax)."""
    for volume in service.get("volumes", []):
        if isinstance(volume, dict) and volume.get("target") == target:
            return str(volume.get("source"))
        if isinstance(volume, str) and volume.split(":")[1] == target:
            return volume.split(":")[0]
    raise AssertionError(f"nothing is mounted at {target}")


def test_compose_validates_and_the_bot_has_no_docker_access(project):
    config = rendered(project, "compose.yaml")
    services = config["services"]
    assert {"bot", "sandbox", "mongo", "socket-proxy"} <= set(services)
    bot, sandbox = services["bot"], services["sandbox"]
    # The bot: no socket, no DOCKER_HOST, not on the engine's network.
    assert "DOCKER_HOST" not in bot["environment"]
    assert not any("docker.sock" in str(v) for v in bot.get("volumes", []))
    assert "docker-api" not in bot["networks"]
    assert bot["environment"]["MONGODB_URI"] == "mongodb://mongo:27017"
    # The sandbox service: the same image, `sandboxd`, the proxy as its only engine access.
    assert sandbox["image"] == bot["image"]
    assert sandbox["command"] == ["python", "-m", "app", "sandboxd"]
    assert sandbox["environment"]["DOCKER_HOST"] == "tcp://socket-proxy:2375"
    assert not any("docker.sock" in str(v) for v in sandbox.get("volumes", []))
    assert set(sandbox["networks"]) == {"docker-api"}
    # They share the socket through a volume: the bot's URL is where the service listens.
    url = bot["environment"]["SANDBOX_SERVICE_URL"]
    assert url == sandbox["environment"]["SANDBOXD_LISTEN"]
    folder = str(Path(url.removeprefix("unix://")).parent)
    assert _mount_of(bot, folder) == _mount_of(sandbox, folder) == "sandbox-socket"
    assert "sandbox-socket" in config["volumes"]
    # The service's data is its own volume, never the bot's folder (the bot cannot write there).
    assert _mount_of(sandbox, "/data") == "sandbox-data"
    assert _mount_of(sandbox, "/data") != _mount_of(bot, "/data")
    assert sandbox["environment"]["HOST_DATA_DIR"] == ""  # found from the engine
    # The bot starts once the service is healthy; everything restarts and has a health check.
    assert bot["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert (
        "sandboxd" in sandbox["healthcheck"]["test"]
        and "--healthcheck" in sandbox["healthcheck"]["test"]
    )
    for name in ("bot", "sandbox", "mongo", "socket-proxy"):
        assert services[name]["restart"] == "unless-stopped"
        assert "healthcheck" in services[name]
    assert config["networks"]["docker-api"]["internal"] is True
    assert "docker-api" not in services["mongo"].get("networks", {})


def test_direct_socket_option_gives_the_socket_to_the_service_only(project):
    services = rendered(project, "compose.yaml", "compose.direct-socket.yaml")["services"]
    sandbox, bot = services["sandbox"], services["bot"]
    assert sandbox["environment"]["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    assert any("docker.sock" in str(v) for v in sandbox["volumes"])
    assert not any("docker.sock" in str(v) for v in bot.get("volumes", []))
    assert "DOCKER_HOST" not in bot["environment"]


def test_the_swarm_stack_runs_a_token_guarded_sandboxd_on_every_node(project, monkeypatch):
    monkeypatch.delenv("SANDBOX_SERVICE_TOKEN", raising=False)
    unset = rendered(project, "stack.yaml")["services"]["sandbox"]["environment"]
    with pytest.raises(ValidationError, match="SANDBOX_SERVICE_TOKEN|sandbox_service_token"):
        Settings(_env_file=None, **{k.lower(): v for k, v in unset.items()})  # it would not start
    monkeypatch.setenv("SANDBOX_SERVICE_TOKEN", "a-token-of-the-stack-test")
    sandbox = rendered(project, "stack.yaml")["services"]["sandbox"]
    assert sandbox["deploy"]["mode"] == "global"
    assert sandbox["command"] == ["python", "-m", "app", "sandboxd"]
    environment = sandbox["environment"]
    assert environment["SANDBOXD_LISTEN"].startswith("http://")
    assert environment["SANDBOX_SERVICE_TOKEN"] == "a-token-of-the-stack-test"
    (port,) = sandbox["ports"]
    assert (port["target"], port["mode"]) == (8750, "ingress")  # the routing mesh
    assert _mount_of(sandbox, "/data") == "sandbox-data"  # per node, found from the engine
    assert "HOST_DATA_DIR" not in environment


def test_logs_are_rotated_and_the_bot_waits_for_healthy_services(project):
    services = rendered(project, "compose.yaml")["services"]
    for name in ("bot", "sandbox", "mongo", "socket-proxy"):
        logging = services[name]["logging"]
        assert logging["driver"] == "json-file"
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 2
    depends = services["bot"]["depends_on"]
    assert depends["mongo"]["condition"] == "service_healthy"
    assert depends["sandbox"]["condition"] == "service_healthy"
    assert services["sandbox"]["depends_on"]["socket-proxy"]["condition"] == "service_healthy"
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
