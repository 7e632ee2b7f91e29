import pytest

from app.config import Settings
from app.sandbox import create_runner
from tests.fakes.file_store import memory_store


@pytest.fixture
def runner(tmp_path):
    # Built but never started in unit tests: no scripted model reply there asks for a run.
    return create_runner(Settings(_env_file=None, data_dir=tmp_path))


@pytest.fixture
def chat_and_store(make_chat, runner, tmp_path):
    store = memory_store(tmp_path)
    return make_chat(runner, tmp_path, store=store), store
