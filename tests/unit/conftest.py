import pytest

from app.config import Settings
from app.wiring import build_runner
from tests.fakes.engine import FakeEngine
from tests.fakes.exec_socket import socket_pair
from tests.fakes.file_store import memory_store


@pytest.fixture
def runner(tmp_path):
    # Built but never started in unit tests: no scripted model reply there asks for a run. The
    # fake engine keeps them off Docker (the tool description reads no image).
    return build_runner(Settings(_env_file=None, data_dir=tmp_path), FakeEngine())


@pytest.fixture
def chat_and_store(make_chat, runner, tmp_path):
    store = memory_store(tmp_path)
    return make_chat(runner, tmp_path, store=store), store


@pytest.fixture
def pair():
    """(ours, engine's) ends of a socket: an ExecStream reads the first, the test writes frames."""
    with socket_pair() as ends:
        yield ends
