"""Session state and notebook display with real containers, cold and warm."""

import struct
import uuid

import pytest

from app.sandbox import RunStatus
from app.wiring import build_runner

pytestmark = pytest.mark.docker

FIRST = """
import pandas as pd, sqlite3
df = pd.DataFrame({"a": [1, 2, 3], "b": [4.0, 5.0, 6.0]})
offset = 10
def total(frame):
    return int(frame.a.sum()) + offset
class Box:
    def __init__(self, value):
        self.value = value
    def twice(self):
        return self.value * 2
box = Box(21)
con = sqlite3.connect(":memory:")
squares = (i * i for i in range(3))
"""

SECOND = """
offset = 100
print(total(df), isinstance(box, Box), box.twice(), pd.__name__, list(df.columns))
"""


def session():
    return f"s-{uuid.uuid4().hex[:8]}"


async def test_names_functions_classes_and_imports_reach_the_next_run(runner, make_request):
    user, name = "alice", session()
    first = await runner.run(make_request(FIRST, user_id=user, session_id=name))
    assert first.status is RunStatus.OK, first.stderr
    assert "not kept: con (sqlite3.Connection)" in first.state_notes
    assert "not kept: squares (generator)" in first.state_notes

    second = await runner.run(make_request(SECOND, user_id=user, session_id=name))

    assert second.status is RunStatus.OK, second.stderr
    # the function sees this run's `offset`, as in a kernel; the class is its instance's class
    assert second.stdout == "106 True 42 pandas ['a', 'b']\n"
    assert second.state_notes == ()


async def test_a_run_that_raised_keeps_what_it_assigned_before_the_error(runner, make_request):
    user, name = "bob", session()
    failed = await runner.run(
        make_request("kept = 5\n1 / 0\nlost = 6", user_id=user, session_id=name)
    )
    assert failed.status is RunStatus.ERROR
    assert 'File "<code>", line 2' in failed.stderr

    after = await runner.run(
        make_request("print(kept, 'lost' in globals())", user_id=user, session_id=name)
    )
    assert after.stdout == "5 False\n"


async def test_other_users_and_sessions_start_empty(runner, make_request):
    name = session()
    await runner.run(make_request("secret = 'alice'", user_id="alice", session_id=name))

    for user, other in (("mallory", name), ("alice", session())):
        result = await runner.run(
            make_request("print(globals().get('secret'))", user_id=user, session_id=other)
        )
        assert result.stdout == "None\n"
    plain = await runner.run(make_request("print(globals().get('secret'))", user_id="alice"))
    assert plain.stdout == "None\n"


async def test_reset_forgets_the_state(runner, make_request):
    name = session()
    await runner.run(make_request("x = 1", user_id="carol", session_id=name))
    assert await runner.reset_session("carol", name) is True

    result = await runner.run(make_request("print(x)", user_id="carol", session_id=name))

    assert result.status is RunStatus.ERROR
    assert "NameError: name 'x' is not defined" in result.stderr


async def test_a_corrupt_snapshot_gives_an_empty_namespace_and_a_note(runner, make_request):
    name = session()
    await runner.run(make_request("x = 1", user_id="dave", session_id=name))
    state = runner.sessions.open_run("dave", name, "probe").state
    state.write_bytes(b"CISTATE1\n" + struct.pack(">I", 5) + b"nope!" + b"\x00" * 100)

    result = await runner.run(
        make_request("print(globals().get('x'), 'ran')", user_id="dave", session_id=name)
    )

    assert result.status is RunStatus.OK
    assert result.stdout == "None ran\n"
    assert any("state is unreadable" in note for note in result.state_notes)


async def test_a_snapshot_of_another_image_is_not_restored(runner, make_request):
    name = session()
    await runner.run(make_request("x = 1", user_id="erin", session_id=name))
    state = runner.sessions.open_run("erin", name, "probe").state
    data = state.read_bytes()
    (length,) = struct.unpack(">I", data[9:13])
    header = data[13 : 13 + length].replace(b'"fingerprint": "', b'"fingerprint": "0')
    state.write_bytes(data[:9] + struct.pack(">I", len(header)) + header + data[13 + length :])

    result = await runner.run(
        make_request("print(globals().get('x'))", user_id="erin", session_id=name)
    )

    assert result.status is RunStatus.OK
    assert result.stdout == "None\n"
    assert any("another sandbox image" in note for note in result.state_notes)


async def test_over_the_cap_the_largest_names_are_dropped_and_named(settings, engine, make_request):
    runner = build_runner(settings.model_copy(update={"session_state_max_bytes": 1024**2}), engine)
    name = session()
    code = "import numpy as np\nbig = np.ones(400_000)\nsmall = [1, 2, 3]"
    first = await runner.run(make_request(code, user_id="frank", session_id=name))
    assert first.status is RunStatus.OK
    assert any(note.startswith("not kept: big (numpy.ndarray, ") for note in first.state_notes)

    second = await runner.run(
        make_request("print(small, 'big' in globals())", user_id="frank", session_id=name)
    )
    assert second.stdout == "[1, 2, 3] False\n"
    await runner.close()


async def test_saving_and_restoring_do_not_count_against_the_timeout(make_request, runner):
    """An object that takes 3 s to pickle and 3 s to unpickle, in runs with a 2 s timeout."""
    name = session()
    slow = (
        "import time\n"
        "class Slow:\n"
        "    def __reduce__(self):\n"
        "        time.sleep(3)\n"
        "        return (time.sleep, (3,))\n"
        "slow = Slow()\n"
    )
    first = await runner.run(make_request(slow, user_id="gina", session_id=name, timeout=2))
    second = await runner.run(
        make_request("print('fine')", user_id="gina", session_id=name, timeout=2)
    )

    for result in (first, second):
        assert result.status is RunStatus.OK, (result.message, result.stderr)
        assert result.exec_seconds < 2
    assert second.stdout == "fine\n"
    assert first.state_seconds >= 3 and second.state_seconds >= 3


async def test_a_save_that_never_ends_is_stopped_and_the_run_stays_ok(
    settings, engine, make_request
):
    runner = build_runner(settings.model_copy(update={"session_state_timeout": 2}), engine)
    name = session()
    stuck = (
        "import signal\n"
        "class Stuck:\n"
        "    def __reduce__(self):\n"
        "        signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "        while True:\n"
        "            try:\n"
        "                pass\n"
        "            except BaseException:\n"
        "                pass\n"
        "stuck = Stuck()\n"
        "print('done')\n"
    )
    await runner.run(make_request("before = 1", user_id="hank", session_id=name))
    result = await runner.run(make_request(stuck, user_id="hank", session_id=name, timeout=5))

    assert result.status is RunStatus.OK, (result.message, result.stderr)
    assert result.stdout == "done\n"
    assert any("saving took longer than 2 seconds" in note for note in result.state_notes)
    after = await runner.run(make_request("print(before)", user_id="hank", session_id=name))
    assert after.stdout == "1\n"  # the state before the stuck run
    await runner.close()


async def test_state_off_keeps_nothing(settings, engine, make_request):
    runner = build_runner(settings.model_copy(update={"session_state": False}), engine)
    name = session()
    await runner.run(make_request("x = 1", user_id="ivan", session_id=name))
    result = await runner.run(
        make_request("print(globals().get('x'))", user_id="ivan", session_id=name)
    )
    assert result.stdout == "None\n"
    assert result.state_notes == ()
    await runner.close()


async def test_trailing_expression_figures_and_display(runner, make_request):
    code = """
import matplotlib.pyplot as plt
import pandas as pd
from PIL import Image
plt.plot([1, 2, 3]); plt.show()
fig = plt.figure(); plt.plot([3, 2, 1]); fig.savefig("mine.png")
plt.figure(); plt.bar([1, 2], [3, 4])
display("shown", Image.new("RGB", (4, 4)))
pd.DataFrame({"v": range(100)})
"""
    result = await runner.run(make_request(code))

    assert result.status is RunStatus.OK, result.stderr
    assert sorted(f.name for f in result.files) == [
        "figure-1.png",
        "figure-2.png",
        "image-1.png",
        "mine.png",
    ]
    assert result.stdout.startswith("'shown'\n     v\n0    0\n")
    # pandas' own truncated repr
    assert "\n..  ..\n" in result.stdout
    assert result.stdout.endswith("\n99  99\n\n[100 rows x 1 columns]\n")
    for f in result.files:
        assert f.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_trailing_semicolon_hides_the_value_and_tracebacks_keep_line_numbers(
    runner, make_request
):
    quiet = await runner.run(make_request("x = 2\nx * 21;"))
    assert quiet.stdout == ""
    shown = await runner.run(make_request("x = 2\nx * 21"))
    assert shown.stdout == "42\n"

    broken = await runner.run(make_request("a = 1\n\ndef f():\n    return a / 0\n\nf()"))
    assert broken.status is RunStatus.ERROR
    assert 'File "<code>", line 6, in <module>' in broken.stderr
    assert 'File "<code>", line 4, in f' in broken.stderr
    assert "sandbox_runner" not in broken.stderr and "sandbox_display" not in broken.stderr
