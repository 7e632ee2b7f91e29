"""Real containers: these tests need a running Docker engine and the sandbox image.

`bash scripts/test.sh` starts the engine and builds the image first. Without them these tests fail
with the reason (they are never skipped: a missing sandbox is a broken product).
"""

import uuid

import pytest

from app.chat.run_files import run_inputs
from app.config import Settings
from app.files import FileStore, InMemoryFileRepository
from app.sandbox import EngineUnavailable, RunRequest, RunStatus
from app.sandbox.docker_engine import DockerEngine
from app.wiring import build_runner, sandbox_policy

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def settings(data_dir):
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        sandbox_instance=f"test-{uuid.uuid4().hex[:8]}",
        code_execution_timeout=30,
        sandbox_memory="512m",
        sandbox_max_output_bytes="64k",
        sandbox_max_concurrent_runs=4,
    )


@pytest.fixture(scope="session")
def engine(settings):
    engine = DockerEngine()
    try:
        engine.ping()
    except EngineUnavailable as exc:
        pytest.fail(f"{exc}\nRun the suite with `bash scripts/test.sh`, which starts the engine.")
    if engine.image_labels(settings.sandbox_image) is None:
        pytest.fail(
            f"sandbox image {settings.sandbox_image} is missing: `python -m app image build`"
        )
    yield engine
    leftovers = engine.list_containers(sandbox_policy(settings).ownership_filter())
    for container_id in leftovers:
        engine.remove(container_id)
    engine.close()
    assert leftovers == [], "sandbox containers were left behind by the suite"


@pytest.fixture(params=["cold", "warm"])
async def runner(request, settings, engine):
    """A started runner, once with the warm pool off and once with one warm container ready."""
    warm = request.param == "warm"
    runner = build_runner(settings.model_copy(update={"sandbox_warm_pool_size": int(warm)}), engine)
    await runner.start()
    if warm:
        assert await runner.pool.wait_ready(), "the warm pool did not fill"
    yield runner
    await runner.close()


@pytest.fixture
def make_request(data_dir, tmp_path):
    """RunRequest factory writing outputs to a fresh folder per test."""

    def make(code, **kwargs):
        kwargs.setdefault("user_id", uuid.uuid4().hex[:6])
        kwargs.setdefault("output_dir", tmp_path / f"out-{uuid.uuid4().hex[:6]}")
        return RunRequest(code=code, **kwargs)

    return make


@pytest.fixture
def input_dir(data_dir):
    """A per-test input folder under DATA_DIR (only DATA_DIR may be mounted)."""
    folder = data_dir / "inputs" / uuid.uuid4().hex[:8]
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def store(data_dir):
    """The real file store, metadata in memory, as an upload would use it."""
    return FileStore(data_dir, InMemoryFileRepository(), max_file_bytes=20 * 1024**2)


@pytest.fixture
def load(runner, store, tmp_path):
    """Store `samples` (name -> bytes) and the files a `produce` run writes, then run `code`."""

    async def run(code, samples=None, produce=None):
        user = f"u{uuid.uuid4().hex[:8]}"
        if produce:
            made = await runner.run(
                RunRequest(code=produce, user_id=user, output_dir=tmp_path / f"made-{user}")
            )
            assert made.status is RunStatus.OK, made.stderr
            for output in made.files:
                await store.save(user, output.name, output.path.read_bytes())
        for name, data in (samples or {}).items():
            await store.save(user, name, data)
        input_dir, files = await run_inputs(store, user)
        return await runner.run(
            RunRequest(
                code=code,
                user_id=user,
                input_dir=input_dir,
                files=files,
                output_dir=tmp_path / f"out-{user}",
            )
        )

    return run
