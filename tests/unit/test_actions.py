"""What the buttons do, with spec_set mocks: the code shown privately from the stored history,
Delete removing the answer's messages only, Re-run refused when the run is gone or the user is
busy, a Stop left over from a restart. (Re-run itself runs code: tests/integration.)"""

import pytest

from app.bot import actions
from app.chat import Turn
from app.chat.service import RUN_GONE
from tests.fakes.discord_mocks import (
    BOT_ID,
    mock_bot,
    mock_channel,
    mock_interaction,
    mock_sent_message,
    posted,
    said,
)

TURN = "00112233445566ff"


@pytest.fixture
def bot(chat_and_store, runner):
    return mock_bot(*chat_and_store, runner)


async def store_turn(chat, code="print(6 * 7)", channel="50"):
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "execute_python_code",
         "arguments": '{"code": "print(1)"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "execute_python_code",
         "arguments": __import__("json").dumps({"code": code})}},
    ]  # fmt: skip
    turn = Turn(
        id=TURN,
        messages=[
            {"role": "user", "content": "compute"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_a", "content": "{}"},
            {"role": "tool", "tool_call_id": "call_b", "content": "{}"},
            {"role": "assistant", "content": "42"},
        ],
        runs=["call_a", "call_b"],
    )
    await chat.records.save_turns("1", channel, [turn])


async def test_code_is_shown_privately_from_the_history(bot):
    await store_turn(bot.services.chat)
    click = mock_interaction(user_id=2, client=bot)  # anyone may look
    await actions.show_code(bot, click, 1, TURN, 0)
    assert said(click) == "Run 1:\n```python\nprint(1)\n```\nRun 2:\n```python\nprint(6 * 7)\n```"
    assert click.response.send_message.await_args.kwargs["ephemeral"] is True
    click = mock_interaction(client=bot)
    await actions.show_code(bot, click, 1, TURN, 2)
    assert said(click) == "Run 2:\n```python\nprint(6 * 7)\n```"


async def test_long_code_comes_as_a_file(bot):
    await store_turn(bot.services.chat, code="x = 1\n" * 500)
    click = mock_interaction(client=bot)
    await actions.show_code(bot, click, 1, TURN, 2)
    files = click.response.send_message.await_args.kwargs["files"]
    assert [f.filename for f in files] == ["run-2.py"]
    assert files[0].fp.read() == b"x = 1\n" * 500


async def test_code_of_a_cleared_conversation_says_so(bot):
    click = mock_interaction(client=bot)
    await actions.show_code(bot, click, 1, TURN, 0)
    assert "no longer in the conversation's history" in said(click)


async def test_rerun_of_a_gone_run_or_while_busy_is_refused(bot):
    click = mock_interaction(client=bot)
    await actions.rerun(bot, click, 1, TURN, 1)
    assert said(click) == RUN_GONE
    await store_turn(bot.services.chat)
    click = mock_interaction(client=bot)
    await actions.rerun(bot, click, 1, TURN, 3)  # there were two runs
    assert said(click) == RUN_GONE
    bot.services.chat._busy.add("1")
    click = mock_interaction(client=bot)
    await actions.rerun(bot, click, 1, TURN, 1)
    assert "one at a time" in said(click)
    click.response.defer.assert_not_awaited()


async def test_delete_removes_the_answer_its_follow_ups_and_re_runs_only(bot):
    channel = mock_channel()
    before = await channel.send("an older answer")
    head = await channel.send("answer, part 1")
    part2 = await channel.send("part 2", reference=head.to_reference())
    files = await channel.send(None, reference=head.to_reference())
    rerun = await channel.send("re-run of run 1", reference=part2.to_reference())
    rerun_files = await channel.send(None, reference=rerun.to_reference())
    other = await channel.send("someone else's answer")
    log = posted(channel)
    # a person's message replying to the answer stays
    person = mock_sent_message(channel=channel, author_id=3)
    person.reference = head.to_reference()
    log.messages.insert(3, type(log.messages[0])(message=person, content="thanks!"))

    click = mock_interaction(client=bot, channel=channel, message=part2)
    await actions.delete_answer(bot, click, head.id)

    gone = {p.message.id for p in log.messages if p.deleted}
    assert gone == {head.id, part2.id, files.id, rerun.id, rerun_files.id}
    assert not {before.id, other.id, person.id} & gone
    click.response.defer.assert_awaited_once()
    assert bot.user.id == BOT_ID


async def test_a_stop_left_over_from_a_restart_goes_away(bot):
    message = mock_sent_message()
    click = mock_interaction(client=bot, message=message)
    await actions.stop(bot, click, "feedfeedfeedfeed")
    assert said(click) == "This has already finished."
    assert message.edit.await_args.kwargs == {"view": None}
