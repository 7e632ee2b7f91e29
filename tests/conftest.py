import sys
from pathlib import Path

# The in-container runtime is plain Python; unit tests exercise its pieces on the host.
RUNTIME_DIR = Path(__file__).resolve().parents[1] / "sandbox-image" / "runtime"
sys.path.insert(0, str(RUNTIME_DIR))


import pytest  # noqa: E402


@pytest.fixture
async def fake_openai():
    from tests.fakes.openai_server import FakeOpenAI

    server = await FakeOpenAI().start()
    yield server
    await server.stop()


@pytest.fixture
async def make_chat(fake_openai):
    """ChatService factory on the fake model server; closes the SDK clients it made."""
    from tests.fakes.chat import make_service

    made = []

    def make(runner, data_dir, **options):
        service = make_service(fake_openai, runner, data_dir, **options)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.client.close()
