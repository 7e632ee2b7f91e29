"""Infrastructure faults are clear results, never tracebacks."""

import dataclasses

import docker

from app.sandbox import RunStatus
from app.sandbox.docker_engine import DockerEngine
from app.wiring import build_runner


async def test_unreachable_engine_is_a_clear_sandbox_error(settings, make_request, tmp_path):
    socket_path = tmp_path / "no-docker.sock"
    engine = DockerEngine(lambda: docker.DockerClient(base_url=f"unix://{socket_path}"))
    runner = build_runner(settings, engine)
    result = await runner.run(make_request("print(1)"))
    engine.close()
    assert result.status is RunStatus.SANDBOX_ERROR
    assert result.message.startswith("sandbox unavailable: cannot reach the Docker engine at")


async def test_missing_image_names_the_build_command(settings, engine, make_request):
    runner = build_runner(
        settings.model_copy(update={"sandbox_image": "codeinterp-missing:nope"}), engine
    )
    result = await runner.run(make_request("print(1)"))
    assert result.status is RunStatus.SANDBOX_ERROR
    assert (
        "codeinterp-missing:nope" in result.message
        and "python -m app image build" in result.message
    )


async def test_leftovers_of_a_dead_owner_are_reaped(settings, engine, runner):
    dead_owner = f"{__import__('socket').gethostname()}:999999999:0"
    policy = dataclasses.replace(runner.policy, owner=dead_owner)
    args = policy.container_args(
        run_id="orphan", user_id="u", code_uid=policy.code_uid_first, input_dir=None
    )
    container_id = engine.create_and_start(args)
    assert container_id in engine.list_containers(runner.policy.ownership_filter())
    assert await runner.reap_leftovers() >= 1
    assert container_id not in engine.list_containers(runner.policy.ownership_filter())
