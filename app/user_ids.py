"""The one rule for user ids (Discord ids, names given on the command line), for every place
that checks them: the file store (a user's folder is named by it), the runner (container labels)
and whatever serves runs. Anchored with \\A and \\Z: `$` would also accept a trailing newline."""

from __future__ import annotations

import re
from typing import TypeGuard

USER_ID = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
RULE = "a user id is 1 to 64 letters, digits, '-' or '_'"


def is_user_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and USER_ID.match(value) is not None
