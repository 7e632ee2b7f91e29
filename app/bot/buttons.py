"""The buttons under an answer, as discord.py DynamicItems: registered once at start-up
(`bot.add_dynamic_items(*DYNAMIC_ITEMS)`), rebuilt from their custom id on every click, so they
keep working after a restart. The views hold nothing else and never time out.

While a turn runs: Stop. When it is done: Re-run (the last run; a menu offers the others when
there were several), Code, Delete. Stop, Re-run and Delete are the author's only; anyone may
see the code. A click is checked here and handed on as a bot event (`answer_stop`,
`answer_rerun`, `answer_code`, `answer_delete`); app/bot/exts/answers.py does the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from app.bot import custom_ids
from app.bot.replies import outcome_of
from app.bot.sending import respond
from app.chat import CodeRun

MENU_OPTIONS = 25  # Discord's most for one menu


async def author_only(interaction: discord.Interaction, author_id: int, what: str) -> bool:
    """Whether the one clicking is the answer's author; tells anyone else why not."""
    if interaction.user.id == author_id:
        return True
    await respond(interaction, f"Only the person who asked can {what}.")
    return False


class StopButton(discord.ui.DynamicItem[discord.ui.Button], template=custom_ids.STOP):
    def __init__(self, user_id: int, turn_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Stop",
                style=discord.ButtonStyle.danger,
                custom_id=custom_ids.stop_id(user_id, turn_id),
            )
        )
        self.user_id = user_id
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(cls, interaction: Any, item: Any, match: Any, /) -> StopButton:
        return cls(int(match["user"]), match["turn"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await author_only(interaction, self.user_id, "stop it")

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch("answer_stop", interaction, self.turn_id)


class RerunButton(discord.ui.DynamicItem[discord.ui.Button], template=custom_ids.RERUN):
    def __init__(self, user_id: int, turn_id: str, number: int, label: str = "Re-run") -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.primary,
                custom_id=custom_ids.rerun_id(user_id, turn_id, number),
            )
        )
        self.user_id = user_id
        self.turn_id = turn_id
        self.number = number

    @classmethod
    async def from_custom_id(cls, interaction: Any, item: Any, match: Any, /) -> RerunButton:
        return cls(int(match["user"]), match["turn"], int(match["run"]))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await author_only(interaction, self.user_id, "re-run it")

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch(
            "answer_rerun", interaction, self.user_id, self.turn_id, self.number
        )


class RerunMenu(discord.ui.DynamicItem[discord.ui.Select], template=custom_ids.PICK):
    def __init__(self, user_id: int, turn_id: str, runs: Sequence[CodeRun] = ()) -> None:
        options = [
            discord.SelectOption(
                label=f"Re-run run {run.number}",
                value=str(run.number),
                description=outcome_of(run.result)[:100],
            )
            for run in list(runs)[-MENU_OPTIONS:]
        ] or [discord.SelectOption(label="Re-run run 1", value="1")]
        super().__init__(
            discord.ui.Select(
                placeholder="Re-run one of the runs…",
                options=options,
                custom_id=custom_ids.pick_id(user_id, turn_id),
            )
        )
        self.user_id = user_id
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(cls, interaction: Any, item: Any, match: Any, /) -> RerunMenu:
        return cls(int(match["user"]), match["turn"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await author_only(interaction, self.user_id, "re-run it")

    async def callback(self, interaction: discord.Interaction) -> None:
        values = self.item.values
        number = int(values[0]) if values and values[0].isdigit() else 0
        interaction.client.dispatch("answer_rerun", interaction, self.user_id, self.turn_id, number)


class CodeButton(discord.ui.DynamicItem[discord.ui.Button], template=custom_ids.CODE):
    def __init__(self, user_id: int, turn_id: str, number: int = 0) -> None:
        super().__init__(
            discord.ui.Button(
                label="Code",
                style=discord.ButtonStyle.secondary,
                custom_id=custom_ids.code_id(user_id, turn_id, number),
            )
        )
        self.user_id = user_id
        self.turn_id = turn_id
        self.number = number

    @classmethod
    async def from_custom_id(cls, interaction: Any, item: Any, match: Any, /) -> CodeButton:
        return cls(int(match["user"]), match["turn"], int(match["run"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch(
            "answer_code", interaction, self.user_id, self.turn_id, self.number
        )


class DeleteButton(discord.ui.DynamicItem[discord.ui.Button], template=custom_ids.DELETE):
    def __init__(self, user_id: int, head_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Delete",
                style=discord.ButtonStyle.secondary,
                custom_id=custom_ids.delete_id(user_id, head_id),
            )
        )
        self.user_id = user_id
        self.head_id = head_id

    @classmethod
    async def from_custom_id(cls, interaction: Any, item: Any, match: Any, /) -> DeleteButton:
        return cls(int(match["user"]), int(match["head"]))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return await author_only(interaction, self.user_id, "delete it")

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch("answer_delete", interaction, self.head_id)


DYNAMIC_ITEMS = (StopButton, RerunButton, RerunMenu, CodeButton, DeleteButton)


def _view(*items: discord.ui.Item) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


def running_view(user_id: int, turn_id: str) -> discord.ui.View:
    return _view(StopButton(user_id, turn_id))


def answer_view(
    user_id: int, turn_id: str, head_id: int, runs: Sequence[CodeRun]
) -> discord.ui.View:
    """Re-run, Code and Delete under a finished answer; Delete only when no code ran."""
    if not runs:
        return _view(DeleteButton(user_id, head_id))
    last = runs[-1].number
    label = "Re-run" if len(runs) == 1 else f"Re-run run {last}"
    items: list[discord.ui.Item] = [
        RerunButton(user_id, turn_id, last, label),
        CodeButton(user_id, turn_id),
        DeleteButton(user_id, head_id),
    ]
    if len(runs) > 1:
        items.append(RerunMenu(user_id, turn_id, runs))
    return _view(*items)


def rerun_view(
    user_id: int, turn_id: str, number: int, head_id: int, ran: bool = True
) -> discord.ui.View:
    """Under a re-run's result: run it again, its code, delete the result (only Delete when it
    could not run)."""
    if not ran:
        return _view(DeleteButton(user_id, head_id))
    return _view(
        RerunButton(user_id, turn_id, number),
        CodeButton(user_id, turn_id, number),
        DeleteButton(user_id, head_id),
    )
