"""Session state under attack: snapshots stay in their session, and a hostile one (a pickle that
runs code when loaded) runs only in its own session's sandbox, with that sandbox's limits."""

import uuid

import pytest

from app.sandbox import RunStatus
from app.sandbox.markers import CODE_MARKER, SAVE_MARKER

pytestmark = pytest.mark.docker


def names():
    return f"u{uuid.uuid4().hex[:6]}", f"s-{uuid.uuid4().hex[:6]}"


# Every file a run was given (its own new snapshot, in /mnt/state, is not given: it is made).
SNOOP = """
import glob, os
given = glob.glob('/mnt/**', recursive=True) + glob.glob('/mnt/**/.*', recursive=True)
found = {p for p in given if os.path.isfile(p) and not p.startswith('/mnt/state/')}
print(globals().get('secret'), sorted(found))
"""


async def test_a_snapshot_never_reaches_another_session_or_user(attack):
    user, session = names()
    first = await attack.run("secret = 'of-the-first-session'", user_id=user, session_id=session)
    assert first.status is RunStatus.OK

    for other_user, other_session in ((names()[0], session), (user, names()[1]), (names()[0], "")):
        result = await attack.run(SNOOP, user_id=other_user, session_id=other_session)
        assert result.status is RunStatus.OK, result.stderr
        assert result.stdout == "None []\n"
    own = await attack.run(SNOOP, user_id=user, session_id=session)
    assert own.stdout == "of-the-first-session ['/mnt/session/state']\n"


HOSTILE = """
import os
class Evil:
    def __reduce__(self):
        return (exec, (PAYLOAD,))
evil = Evil()
"""


async def test_a_hostile_snapshot_runs_only_inside_its_own_sessions_sandbox(attack, tmp_path):
    user, session = names()
    host_marker = tmp_path / "pwned-on-the-host"
    payload = (
        "import os\n"
        f"try:\n    open({str(host_marker)!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
        "open(os.path.join(os.environ['OUTPUT_DIR'], 'pwned.txt'), 'w').write("
        "f'{os.getuid()} {os.uname().nodename}')\n"
    )
    made = await attack.run(f"PAYLOAD = {payload!r}\n{HOSTILE}", user_id=user, session_id=session)
    assert made.status is RunStatus.OK, made.stderr

    loaded = await attack.run("print('next run')", user_id=user, session_id=session)
    others = [
        await attack.run("print('next run')", user_id=names()[0], session_id=session),
        await attack.run("print('next run')", user_id=user, session_id=names()[1]),
    ]

    assert loaded.status is RunStatus.OK and loaded.stdout == "next run\n"
    pwned = {f.name: f.path for f in loaded.files}["pwned.txt"].read_text().split()
    uid = int(pwned[0])
    assert attack.runner.policy.code_uid_first <= uid <= attack.runner.policy.code_uid_last
    assert pwned[1] == "sandbox"  # in the sandbox, not on the host
    assert not host_marker.exists()  # the host never loaded it
    assert all(not o.files and o.stdout == "next run\n" for o in others)


async def test_a_hostile_snapshot_gets_the_sandboxs_limits(attack):
    user, session = names()
    spin = (
        "import signal\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "while True:\n"
        "    try:\n        pass\n    except BaseException:\n        pass\n"
    )
    made = await attack.run(f"PAYLOAD = {spin!r}\n{HOSTILE}", user_id=user, session_id=session)
    assert made.status is RunStatus.OK, made.stderr

    held = await attack.run("print('never')", user_id=user, session_id=session, timeout=3)

    # check_host: within its timeout plus the restore bound; no container left
    assert held.status is RunStatus.TIMEOUT
    assert "never" not in held.stdout


async def test_markers_printed_by_the_code_buy_no_more_than_the_state_bounds(attack):
    user, session = names()
    code = (
        "import os\n"
        f"os.write(1, {CODE_MARKER!r})\n"
        f"os.write(1, {SAVE_MARKER + b'0' + bytes([10])!r})\n"
        "while True:\n    pass\n"
    )
    result = await attack.run(code, user_id=user, session_id=session, timeout=3)
    # the forged save mark moved the timer to the save bound: the run still ends, stopped
    assert result.status in (RunStatus.OK, RunStatus.TIMEOUT)
    assert "state not saved" in " ".join(result.state_notes)
