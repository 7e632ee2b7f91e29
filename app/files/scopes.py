"""Where a file may be used: the scope it was shared in (docs/files.md, "Scopes").

A file's scope is fixed when it is stored: "dm" for a file shared in a DM with the bot (or added
from the terminal), "guild:<id>" for one shared in a server. Outputs of a run take the scope of
the conversation that ran it. A turn lists to the model and mounts into its runs only the files
of its own scope, so a file from a DM never reaches a server's channel and a file from one server
never another server. The user can still use a file elsewhere deliberately: naming its id (from
/files) in their own message brings it into that one turn.
"""

from __future__ import annotations

import re

PRIVATE = "dm"
_GUILD = "guild:"
FILE_ID = re.compile(r"\b[0-9a-f]{16}\b")


def scope_of(guild_id: int | str | None) -> str:
    """The scope of a conversation: its server, or private (a DM, the terminal)."""
    return PRIVATE if guild_id is None else f"{_GUILD}{guild_id}"


def is_valid_scope(scope: str) -> bool:
    return scope == PRIVATE or (
        scope.startswith(_GUILD) and scope[len(_GUILD) :].isdigit() and len(scope) <= 40
    )


def describe(scope: str, here: str) -> str:
    """How /files names a file's scope to its owner, seen from `here`."""
    if scope == here:
        return "shared here"
    if scope == PRIVATE:
        return "shared in DMs"
    return "shared in a server" if here == PRIVATE else "shared in another server"


def named_ids(text: str) -> set[str]:
    """File ids the user wrote in their message: a deliberate use of those files in this turn."""
    return set(FILE_ID.findall(text.lower()))
