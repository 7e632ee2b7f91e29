"""The answer's buttons: which show in each state, their custom ids survive a restart (the
template round trip a click goes through), author-only checks, and what a click hands on."""

import pytest

from app.bot import custom_ids
from app.bot.buttons import (
    DYNAMIC_ITEMS,
    CodeButton,
    DeleteButton,
    RerunButton,
    RerunMenu,
    StopButton,
    answer_view,
    rerun_view,
    running_view,
)
from app.bot.exts import answers
from app.chat import CodeRun
from app.sandbox import RunResult, RunStatus
from tests.fakes.discord_mocks import mock_bot, mock_interaction

TURN = "0123456789abcdef"
USER = 123456789012345678  # a real snowflake's length


def run(number, status=RunStatus.OK):
    return CodeRun("print(1)", RunResult("r", status, exec_seconds=0.5), number=number)


def labels(view):
    return [getattr(item.item, "label", None) or item.item.placeholder for item in view.children]


async def test_the_buttons_shown_in_each_state():
    assert labels(running_view(USER, TURN)) == ["Stop"]
    assert labels(answer_view(USER, TURN, 42, [])) == ["Delete"]
    assert labels(answer_view(USER, TURN, 42, [run(1)])) == ["Re-run", "Code", "Delete"]
    several = answer_view(USER, TURN, 42, [run(1, RunStatus.ERROR), run(2)])
    assert labels(several) == ["Re-run run 2", "Code", "Delete", "Re-run one of the runs…"]
    menu = several.children[-1].item
    assert [(o.label, o.value, o.description) for o in menu.options] == [
        ("Re-run run 1", "1", "error, 0.5 s"),
        ("Re-run run 2", "2", "finished, 0.5 s"),
    ]
    assert labels(rerun_view(USER, TURN, 2, 43)) == ["Re-run", "Code", "Delete"]
    assert labels(rerun_view(USER, TURN, 2, 43, ran=False)) == ["Delete"]
    for view in (running_view(USER, TURN), several):
        assert view.timeout is None and view.is_persistent()  # they never expire


async def test_custom_ids_carry_what_a_click_needs_and_round_trip():
    view = answer_view(USER, TURN, 987654321098765432, [run(1), run(2)])
    ids = [item.custom_id for item in view.children]
    assert ids == [
        f"ci:rerun:{USER}:{TURN}:2",
        f"ci:code:{USER}:{TURN}:0",
        f"ci:delete:{USER}:987654321098765432",
        f"ci:pick:{USER}:{TURN}",
    ]
    assert all(len(i) <= 100 for i in ids)
    items = [*view.children, *running_view(USER, TURN).children]
    for item in items:
        # As after a restart: only the custom id is known, the registered class rebuilds it.
        matching = [cls for cls in DYNAMIC_ITEMS if cls.__discord_ui_compiled_template__.fullmatch(
            item.custom_id)]  # fmt: skip
        assert matching == [type(item)]
        match = matching[0].__discord_ui_compiled_template__.fullmatch(item.custom_id)
        rebuilt = await matching[0].from_custom_id(mock_interaction(), item.item, match)
        assert rebuilt.custom_id == item.custom_id
        assert vars(rebuilt).keys() >= {"user_id"}
        assert {k: v for k, v in vars(rebuilt).items() if k != "item" and not k.startswith("_")} == {
            k: v for k, v in vars(item).items() if k != "item" and not k.startswith("_")
        }  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["ci:rerun:1:xyz:1", "ci:delete:abc:1", "ci:stop:1:" + "a" * 40, "ci:code:1:ab", "other:1"],
)
def test_foreign_or_broken_ids_are_not_ours(text):
    assert not any(cls.__discord_ui_compiled_template__.fullmatch(text) for cls in DYNAMIC_ITEMS)


async def test_only_the_author_may_stop_rerun_or_delete_but_anyone_may_see_the_code():
    for item in (
        StopButton(USER, TURN),
        RerunButton(USER, TURN, 1),
        RerunMenu(USER, TURN),
        DeleteButton(USER, 5),
    ):
        stranger = mock_interaction(user_id=7)
        assert not await item.interaction_check(stranger)
        call = stranger.response.send_message.await_args
        assert call.args[0].startswith("Only the person who asked can")
        assert call.kwargs["ephemeral"] is True
        assert await item.interaction_check(mock_interaction(user_id=USER))
    assert await CodeButton(USER, TURN).interaction_check(mock_interaction(user_id=7))


async def test_a_click_is_handed_on_as_a_bot_event(chat_and_store, runner):
    bot = mock_bot(*chat_and_store, runner)
    click = mock_interaction(user_id=USER, client=bot)
    await RerunButton(USER, TURN, 3).callback(click)
    await CodeButton(USER, TURN, 0).callback(click)
    await DeleteButton(USER, 55).callback(click)
    await StopButton(USER, TURN).callback(click)
    menu = RerunMenu(USER, TURN, [run(1), run(2)])
    menu.item._values = ["1"]  # as discord.py sets it from the interaction's data
    await menu.callback(click)
    assert [c.args[0:1] + c.args[2:] for c in bot.dispatch.call_args_list] == [
        ("answer_rerun", USER, TURN, 3),
        ("answer_code", USER, TURN, 0),
        ("answer_delete", 55),
        ("answer_stop", TURN),
        ("answer_rerun", USER, TURN, 1),
    ]
    assert all(c.args[1] is click for c in bot.dispatch.call_args_list)


async def test_the_buttons_are_registered_at_start_up(chat_and_store, runner):
    from app.bot import BotServices, CodeInterpreterBot

    chat, store = chat_and_store
    bot = CodeInterpreterBot(BotServices(chat, store, runner))
    await answers.setup(bot)
    registered = set(bot._connection._view_store._dynamic_items.values())
    assert registered == set(DYNAMIC_ITEMS)
    assert custom_ids.STOP.fullmatch(custom_ids.stop_id(USER, TURN))
