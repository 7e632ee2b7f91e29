"""/files list (paged), download and delete with file-id autocomplete, with spec_set mocks."""

import discord
import pytest

from app.bot.exts.files import FilesCog
from app.bot.file_list import file_choices, files_page
from app.bot.views import ConfirmView, FilesPageView
from tests.fakes.discord_mocks import mock_bot, mock_interaction, said


@pytest.fixture
def cog(chat_and_store, runner):
    chat, store = chat_and_store
    return FilesCog(mock_bot(chat, store, runner))


async def test_list_download_and_empty(cog):
    interaction = mock_interaction()
    await cog.list_files.callback(cog, interaction)
    assert said(interaction) == "You have no stored files."

    stored = await cog.store.save("1", "data.csv", b"a,b\n1,2\n")
    await cog.store.save("2", "other.csv", b"x")  # someone else's file
    interaction = mock_interaction()
    await cog.list_files.callback(cog, interaction)
    text = said(interaction)
    assert f"`{stored.file_id}` data.csv" in text and "expires <t:" in text
    assert "other.csv" not in text
    assert interaction.response.send_message.await_args.kwargs["ephemeral"] is True
    assert "view" not in interaction.response.send_message.await_args.kwargs  # one page

    interaction = mock_interaction()
    await cog.download.callback(cog, interaction, stored.file_id)
    sent = interaction.response.send_message.await_args.kwargs["files"][0]
    assert isinstance(sent, discord.File) and sent.filename == "data.csv"


async def test_a_long_list_pages_instead_of_being_cut(chat_and_store, runner, make_chat, tmp_path):
    from tests.fakes.file_store import memory_store

    store = memory_store(tmp_path / "many", max_files_per_user=100)
    cog = FilesCog(mock_bot(make_chat(runner, tmp_path, store=store), store, runner))
    for i in range(23):
        await store.save("1", f"{'long-name-' * 20}{i:02d}.csv", b"a\n1\n")
    interaction = mock_interaction()
    await cog.list_files.callback(cog, interaction)
    first = said(interaction)
    assert first.startswith("Your files (23, page 1 of 3; write an id")
    assert len(first) <= 2000 and first.count("\n`") == 10
    view = interaction.response.send_message.await_args.kwargs["view"]
    assert isinstance(view, FilesPageView)
    assert view.previous.disabled and not view.next.disabled

    assert not await view.interaction_check(mock_interaction(user_id=2))  # the asker's only
    click = mock_interaction()
    await view.next.callback(click)
    await view.next.callback(click)
    last = click.response.edit_message.await_args.kwargs["content"]
    assert last.startswith("Your files (23, page 3 of 3;") and last.count("\n`") == 3
    assert view.next.disabled and not view.previous.disabled
    # every file is on some page
    listed = {line.split("`")[1] for p in (1, 2, 3) for line in files_page(
        await store.list("1"), p)[0].splitlines()[1:]}  # fmt: skip
    assert listed == {f.file_id for f in await store.list("1")}

    interaction = mock_interaction()
    await cog.list_files.callback(cog, interaction, 99)  # past the end: the last page
    assert said(interaction).startswith("Your files (23, page 3 of 3;")


async def test_files_of_another_user_cannot_be_reached(cog):
    theirs = await cog.store.save("2", "secret.csv", b"x")
    interaction = mock_interaction(user_id=1)
    await cog.download.callback(cog, interaction, theirs.file_id)
    assert "You have no file with id" in said(interaction)
    interaction = mock_interaction(user_id=1)
    await cog.delete.callback(cog, interaction, theirs.file_id)
    assert "You have no file with id" in said(interaction)
    assert await cog.store.get("2", theirs.file_id) is not None


async def test_delete_one_needs_confirmation(cog):
    stored = await cog.store.save("1", "data.csv", b"a,b\n")
    interaction = mock_interaction()
    await cog.delete.callback(cog, interaction, stored.file_id)
    assert said(interaction).startswith("Delete data.csv")
    view = interaction.response.send_message.await_args.kwargs["view"]
    assert isinstance(view, ConfirmView)
    assert await cog.store.get("1", stored.file_id) is not None  # nothing yet

    other = mock_interaction(user_id=2)
    assert not await view.interaction_check(other)  # only the asker can confirm

    click = mock_interaction()
    await view.confirm.callback(click)
    assert click.response.edit_message.await_args.kwargs["content"] == "Deleted data.csv."
    assert await cog.store.get("1", stored.file_id) is None


async def test_delete_all_can_be_cancelled(cog):
    await cog.store.save("1", "a.csv", b"1")
    await cog.store.save("1", "b.csv", b"2")
    interaction = mock_interaction()
    await cog.delete.callback(cog, interaction, "all")
    assert "Delete all 2 of your files?" in said(interaction)
    view = interaction.response.send_message.await_args.kwargs["view"]
    click = mock_interaction()
    await view.cancel.callback(click)
    assert click.response.edit_message.await_args.kwargs["content"] == "Nothing was deleted."
    assert len(await cog.store.list("1")) == 2
    interaction = mock_interaction()
    await cog.delete.callback(cog, interaction, " ALL ")
    view = interaction.response.send_message.await_args.kwargs["view"]
    await view.confirm.callback(click)
    assert click.response.edit_message.await_args.kwargs["content"] == "Deleted 2 file(s)."


async def test_file_id_autocomplete_finds_by_name_or_id_and_offers_all_for_delete(cog):
    sales = await cog.store.save("1", "sales.csv", b"a\n1\n")
    await cog.store.save("1", "plot.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    await cog.store.save("2", "sales-of-someone-else.csv", b"a\n")

    choices = await cog._download_choices(mock_interaction(), "SAL")
    assert [c.value for c in choices] == [sales.file_id]
    assert choices[0].name.startswith("sales.csv · csv") and len(choices[0].name) <= 100
    assert [c.value for c in await cog._download_choices(mock_interaction(), sales.file_id[:5])] \
        == [sales.file_id]  # fmt: skip
    assert len(await cog._download_choices(mock_interaction(), "")) == 2
    deleting = await cog._delete_choices(mock_interaction(), "")
    assert deleting[0].value == "all" and deleting[0].name == "All my files (2)"
    assert await cog._delete_choices(mock_interaction(user_id=3), "") == []


def test_at_most_25_choices():
    from tests.unit.test_replies import stored_file

    files = [stored_file(f"f{i}.csv", f"id{i:02d}") for i in range(40)]
    assert len(file_choices(files, "", offer_all=True)) == 25


async def test_files_list_says_where_each_file_was_shared(cog):
    await cog.store.save("1", "here.csv", b"a", scope="guild:77")
    await cog.store.save("1", "private.csv", b"a", scope="dm")
    interaction = mock_interaction(guild_id=77)
    await cog.list_files.callback(cog, interaction)
    lines = said(interaction).splitlines()
    assert any("here.csv" in line and "shared here" in line for line in lines)
    assert any("private.csv" in line and "shared in DMs" in line for line in lines)
    assert "write an id in a message to use it elsewhere" in lines[0]
