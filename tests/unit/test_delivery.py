"""The end of a turn: text first, files in groups Discord accepts, a refused group retried file
by file, and a file that still fails named by its stored id (a forced HTTP 413)."""

import discord

from app.bot.attachments import Attachment
from app.bot.delivery import deliver, send_attachments
from app.bot.live import LiveReply
from app.chat import ChatAnswer, CodeRun, DeliveredFile
from app.sandbox import RunResult, RunStatus
from tests.fakes.discord_mocks import http_error, mock_channel, mock_guild, posted

MB = 1024**2


def refuse(channel, when):
    """channel.send raises HTTP 413 for a message whose files `when(filenames)` picks."""
    original = channel.send.side_effect

    async def send(content=None, **kwargs):
        names = [f.filename for f in kwargs.get("files") or []]
        if names and when(names):
            raise http_error(413, "Request entity too large")
        return await original(content, **kwargs)

    channel.send.side_effect = send


def produced(tmp_path, name, size, file_id):
    path = tmp_path / name
    path.write_bytes(b"x" * 16)
    return DeliveredFile(name=name, path=path, size=size, file_id=file_id)


async def test_a_413_group_is_retried_file_by_file_and_the_failing_one_is_named(tmp_path):
    channel = mock_channel()
    # Discord refuses any message carrying big.csv, whatever else is with it.
    refuse(channel, lambda names: "big.csv" in names)
    head = await channel.send("-# Thinking…")
    live = LiveReply(channel, head, "-# Thinking…")
    files = (
        produced(tmp_path, "plot.png", 1 * MB, "id-plot"),
        produced(tmp_path, "big.csv", 3 * MB, "id-big"),
        produced(tmp_path, "table.csv", 1 * MB, "id-table"),
    )
    answer = ChatAnswer(
        text="Here you go.", runs=[CodeRun("c", RunResult("r", RunStatus.OK), files)]
    )

    await deliver(live, answer, mock_guild(10 * MB), None)

    log = posted(channel).live()
    assert log[0].content.startswith("-# Run 1: finished") and "Here you go." in log[0].content
    attached = [p.filenames for p in log if p.files]
    assert attached == [["plot.png"], ["table.csv"]]  # the group was split; the others went
    assert log[-1].content == (
        "-# big.csv could not be attached here; it is stored as file id-big (see /files)."
    )
    assert all(p.reference.message_id == head.id for p in log[1:])  # all part of this answer


async def test_files_are_sent_in_groups_within_the_request_limit(tmp_path):
    channel = mock_channel()
    attachments = [Attachment(f"f{i}.bin", size=3 * MB, data=b"x") for i in range(5)]
    head = await channel.send("text")
    failed = await send_attachments(channel, head, attachments, 10 * MB)
    assert failed == []
    assert [p.filenames for p in posted(channel).messages[1:]] == [
        ["f0.bin", "f1.bin", "f2.bin"],
        ["f3.bin", "f4.bin"],
    ]


async def test_any_http_error_or_a_vanished_file_is_named_not_fatal(tmp_path):
    channel = mock_channel()
    refuse(channel, lambda names: "a.png" in names)
    head = await channel.send("text")
    gone = Attachment("gone.csv", size=10, path=tmp_path / "missing.csv", file_id="id-gone")
    failed = await send_attachments(
        channel, head, [Attachment("a.png", 10, data=b"x", file_id="id-a"), gone], 10 * MB
    )
    assert [a.filename for a in failed] == ["a.png", "gone.csv"]


async def test_text_goes_first_even_when_every_file_fails(tmp_path):
    channel = mock_channel()
    refuse(channel, lambda names: True)
    head = await channel.send("-# Thinking…")
    live = LiveReply(channel, head, "-# Thinking…")
    run = CodeRun("c", RunResult("r", RunStatus.OK), (produced(tmp_path, "p.png", 10, "pid"),))
    await deliver(live, ChatAnswer(text="The answer.", runs=[run]), None, None)
    texts = [p.content for p in posted(channel).live()]
    assert "The answer." in texts[0]
    assert (
        texts[-1] == "-# p.png could not be attached here; it is stored as file pid (see /files)."
    )
    assert isinstance(http_error(413), discord.HTTPException)
