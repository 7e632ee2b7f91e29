"""Files stay where they were shared: the rule, what the model is shown, what a run mounts."""

import pytest

from app.chat.run_files import run_inputs
from app.files import scopes
from tests.fakes.file_store import memory_store
from tests.fakes.openai_server import reply

DM, GUILD_A, GUILD_B = "dm", "guild:100", "guild:200"


def system_text(request: dict) -> str:
    return request["messages"][1]["content"]


@pytest.mark.parametrize(
    ("guild_id", "scope"), [(None, "dm"), (100, "guild:100"), ("200", "guild:200")]
)
def test_the_scope_of_a_conversation(guild_id, scope):
    assert scopes.scope_of(guild_id) == scope
    assert scopes.is_valid_scope(scope)


@pytest.mark.parametrize("bad", ["", "guild:", "guild:abc", "server:1", "DM", "guild:1 "])
def test_only_dm_and_guild_ids_are_scopes(bad):
    assert not scopes.is_valid_scope(bad)


def test_named_ids_are_file_ids_in_the_users_own_words():
    assert scopes.named_ids("use 0123456789abcdef and 0123456789ABCDEF") == {"0123456789abcdef"}
    assert scopes.named_ids("a 0123456789abcdef0 hash is not an id") == set()


async def test_a_dm_file_is_not_shown_in_a_server_and_one_servers_file_not_in_another(
    chat_and_store, fake_openai
):
    chat, store = chat_and_store
    private = await store.save("u1", "salary.csv", b"a\n1\n", scope=DM)
    in_a = await store.save("u1", "team-a.csv", b"a\n1\n", scope=GUILD_A)
    fake_openai.add(reply("a"), reply("b"), reply("c"))

    await chat.turn("u1", "chan-a", "what files do I have?", scope=GUILD_A)
    await chat.turn("u1", "chan-b", "what files do I have?", scope=GUILD_B)
    await chat.turn("u1", "dm", "what files do I have?", scope=DM)

    shown_a, shown_b, shown_dm = (system_text(r) for r in fake_openai.requests)
    assert in_a.file_id in shown_a and private.file_id not in shown_a
    assert "salary.csv" not in shown_a
    assert in_a.file_id not in shown_b and private.file_id not in shown_b
    assert "no stored files available here" in shown_b
    assert private.file_id in shown_dm and in_a.file_id not in shown_dm


async def test_uploads_take_the_scope_of_their_conversation(chat_and_store, fake_openai):
    from app.chat import Upload

    chat, store = chat_and_store
    await chat.turn("u1", "chan-a", "", [Upload("a.csv", b"a\n1\n")], scope=GUILD_A)
    await chat.turn("u1", "dm", "", [Upload("b.csv", b"a\n1\n")])
    by_name = {f.name: f.scope for f in await store.list("u1")}
    assert by_name == {"a.csv": GUILD_A, "b.csv": DM}


async def test_naming_a_file_id_uses_it_in_that_turn_only(chat_and_store, fake_openai):
    chat, store = chat_and_store
    private = await store.save("u1", "notes.txt", b"secret plan", scope=DM)
    fake_openai.add(reply("a"), reply("b"))
    await chat.turn("u1", "chan-a", f"summarise {private.file_id} for the team", scope=GUILD_A)
    await chat.turn("u1", "chan-a", "and now?", scope=GUILD_A)
    assert private.file_id in system_text(fake_openai.requests[0])
    assert private.file_id not in system_text(fake_openai.requests[1])
    assert (await store.get("u1", private.file_id)).scope == DM  # the file itself stays private


async def test_someone_elses_file_id_brings_nothing(chat_and_store, fake_openai):
    chat, store = chat_and_store
    theirs = await store.save("u2", "theirs.csv", b"a\n1\n", scope=GUILD_A)
    fake_openai.add(reply("a"))
    await chat.turn("u1", "chan-a", f"open {theirs.file_id}", scope=GUILD_A)
    assert theirs.file_id not in system_text(fake_openai.requests[0])


async def test_a_limited_run_mounts_only_its_files(tmp_path):
    store = memory_store(tmp_path)
    keep = await store.save("u1", "keep.csv", b"a\n1\n", scope=GUILD_A)
    hide = await store.save("u1", "hide.csv", b"a\n2\n", scope=DM)
    folder, files = await run_inputs(store, "u1", only={keep.file_id}, link_dir=tmp_path / "in")
    assert folder == tmp_path / "in"
    assert [f.file_id for f in files] == [keep.file_id]
    on_disk = sorted(p.name for p in folder.iterdir())
    assert on_disk == [store.absolute_path(keep).name]  # the other file is not on the mount
    assert store.absolute_path(hide).name not in on_disk
    assert (folder / on_disk[0]).read_bytes() == b"a\n1\n"
    assert folder.stat().st_mode & 0o777 == 0o755
    # without a limit (the `run` command) the user's whole folder is mounted, as before
    folder, files = await run_inputs(store, "u1")
    assert folder == store.user_dir("u1") and len(files) == 2


def test_the_files_list_names_where_each_file_was_shared():
    assert scopes.describe(GUILD_A, GUILD_A) == "shared here"
    assert scopes.describe(DM, GUILD_A) == "shared in DMs"
    assert scopes.describe(GUILD_B, GUILD_A) == "shared in another server"
    assert scopes.describe(GUILD_B, DM) == "shared in a server"
