from pathlib import Path

import pytest

# The in-container runtime (sandbox-image/runtime) and the project root are on sys.path through
# pyproject's `pythonpath`, so plain `pytest` works from a checkout.

REAL_CONTAINERS = ("integration", "security")


def pytest_collection_modifyitems(items):
    """Everything under tests/integration and tests/security runs real containers: marked
    `docker`, so `pytest -m "not docker"` is the fast lane (unit tests only)."""
    for item in items:
        if Path(item.path).parent.name in REAL_CONTAINERS:
            item.add_marker(pytest.mark.docker)


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
