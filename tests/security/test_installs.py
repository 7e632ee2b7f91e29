"""Package installs cannot be amplified: imports nobody runs, runs of one user, and the install
containers themselves, which share a network on which they cannot reach each other.

The package index given here refuses every connection, so each install fails in a second or two;
what is counted is the install containers the engine creates, from its own event stream.
"""

import json

import docker
import pytest

from app.sandbox import RunStatus
from app.wiring import build_runner

APPROVED_MISSING = ["toolz", "more_itertools", "xmltodict", "humanize", "tqdm", "emoji"]


@pytest.fixture
async def install_runner(settings, engine, runner):
    """The test's runner kind (cold or warm), with installs that fail fast and small limits."""
    limited = settings.model_copy(
        update={
            "sandbox_pip_index_url": "http://127.0.0.1:9/simple",
            "package_ca_bundle": None,
            "package_max_per_run": 2,
            "package_max_per_user_day": 3,
            "sandbox_warm_pool_size": runner.pool.size if runner.pool else 0,
        }
    )
    limited_runner = build_runner(limited, engine)
    await limited_runner.start()
    if limited_runner.pool is not None:
        assert await limited_runner.pool.wait_ready()
    yield limited_runner
    await limited_runner.close()


async def test_imports_nobody_runs_install_at_most_the_per_run_limit(
    install_runner,
    make_request,
    install_containers,
):
    code = "if False:\n" + "".join(f"    import {m}\n" for m in APPROVED_MISSING) + "print('ran')"
    result = await install_runner.run(make_request(code, user_id="amplifier"))
    assert result.status is RunStatus.OK and result.stdout == "ran\n", result.message
    assert install_containers.created() <= 2


async def test_one_user_gets_a_daily_number_of_installs(
    install_runner, make_request, install_containers
):
    for names in (APPROVED_MISSING[:2], APPROVED_MISSING[2:4], APPROVED_MISSING[4:]):
        code = "if False:\n" + "".join(f"    import {m}\n" for m in names) + "print('ran')"
        result = await install_runner.run(make_request(code, user_id="daily"))
        assert result.status is RunStatus.OK, result.message
    assert install_containers.created() <= 3


async def test_install_containers_cannot_reach_each_other(
    install_runner, make_request, install_containers
):
    result = await install_runner.run(make_request("import toolz\n", user_id="netcheck"))
    assert result.status is RunStatus.ERROR  # the install failed: the index refuses connections
    policy = install_runner.policy
    network = policy.install_container_args(
        run_id="t", user_id="t", work_dir=policy.data_dir, distribution="x"
    )["network_mode"]
    assert network not in ("bridge", "default", "host"), network
    client = docker.from_env()
    listener = client.containers.run(
        policy.image,
        ["python3", "-c", "import http.server as h; h.test(h.SimpleHTTPRequestHandler, port=8080)"],
        network=network,
        labels={"io.codeinterp.managed": "true", "io.codeinterp.instance": policy.instance},
        user=f"{policy.install_uid}:{policy.install_uid}",
        detach=True,
    )
    try:
        listener.reload()
        address = listener.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        probe = (
            "import socket\ns = socket.socket(); s.settimeout(3)\n"
            f"print(s.connect_ex(({address!r}, 8080)))"
        )
        out = client.containers.run(
            policy.image,
            ["python3", "-c", probe],
            network=network,
            labels={"io.codeinterp.managed": "true", "io.codeinterp.instance": policy.instance},
            user=f"{policy.install_uid}:{policy.install_uid}",
            remove=True,
        )
        assert out.strip() != b"0", "one install container reached another"
        options = client.api.inspect_network(network).get("Options") or {}
        assert options.get("com.docker.network.bridge.enable_icc") == "false", json.dumps(options)
    finally:
        listener.remove(force=True)
        client.close()
