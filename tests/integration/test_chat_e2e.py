"""The chat end to end: fake model server (real SDK) -> ChatService -> the REAL sandbox."""

import io
import json

import pytest

from app import cli
from app.chat import TurnEvents, Upload
from app.sandbox import RunStatus
from tests.fakes.openai_server import (
    ThreadedFakeOpenAI,
    call,
    last_tool_result,
    reply,
    tool_call,
    tool_calls,
)

pytestmark = pytest.mark.docker

PLOT_CODE = """
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
df = load_file("data.csv")
plt.plot(df["b"])
plt.savefig("plot.png")
print("rows", len(df))
"""


def answer_from_result(body):
    result = last_tool_result(body)
    return reply(
        f"status={result['status']} stdout={result['stdout'].strip()} "
        f"files={[f['name'] for f in result['files']]}"
    )


async def test_plot_column_of_an_uploaded_csv_comes_back_as_a_png(
    fake_openai, make_chat, runner, data_dir
):
    service = make_chat(runner, data_dir)
    fake_openai.add(tool_call(PLOT_CODE), answer_from_result)

    answer = await service.turn(
        "e2e-plot", "c1", "plot column b of this", [Upload("data.csv", b"a,b\n1,4\n2,9\n3,1\n")]
    )

    assert answer.error == ""
    assert answer.text == "status=ok stdout=rows 3 files=['plot.png']"
    assert [f.name for f in answer.files] == ["plot.png"]
    assert answer.files[0].path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the model was told about the stored upload, and the plot is now one of the user's files
    assert "data.csv" in fake_openai.requests[0]["messages"][1]["content"]
    assert {f.name for f in await service.store.list("e2e-plot")} == {"data.csv", "plot.png"}
    # the staging folder of the run is gone
    assert not any((data_dir / "runs").glob("*/*"))


async def test_the_model_sees_its_error_and_fixes_the_code_in_round_two(
    fake_openai, make_chat, runner, data_dir
):
    service = make_chat(runner, data_dir)

    def fix(body):
        result = last_tool_result(body)
        assert result["status"] == "error"
        assert "NameError" in result["stderr"]
        return tool_call("print(41 + 1)")

    fake_openai.add(tool_call("print(undefined_total)"), fix, answer_from_result)

    answer = await service.turn("e2e-fix", "c1", "what is 41 + 1?")

    assert answer.text == "status=ok stdout=42 files=[]"
    assert [run.result.status for run in answer.runs] == [RunStatus.ERROR, RunStatus.OK]
    assert answer.notices == []  # an error the model fixed is not the user's problem


async def test_a_run_over_its_timeout_gives_a_friendly_timeout_reply(
    fake_openai, make_chat, runner, data_dir
):
    service = make_chat(runner, data_dir)
    fake_openai.add(
        tool_call("import time\ntime.sleep(5)\nprint('done')", timeout=1), answer_from_result
    )

    answer = await service.turn("e2e-timeout", "c1", "sleep a while")

    assert answer.runs[0].result.status is RunStatus.TIMEOUT
    assert answer.text.startswith("status=timeout")
    assert answer.notices == ["The code ran longer than the 1 s limit and was stopped."]
    tool_json = json.loads(fake_openai.requests[1]["messages"][-1]["content"])
    assert tool_json["timeout_seconds"] == 1 and "1 s limit" in tool_json["message"]


def test_terminal_chat_prints_answers_code_and_file_paths(
    monkeypatch, settings, engine, data_dir, tmp_path, capsys
):
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n1,4\n2,9\n")
    fake = ThreadedFakeOpenAI()
    try:
        fake.server.add(reply("Hi there."), tool_call(PLOT_CODE), answer_from_result)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-terminal")
        monkeypatch.setenv("OPENAI_MAX_RETRIES", "0")
        monkeypatch.setenv("DATA_DIR", str(data_dir))
        monkeypatch.setenv("SANDBOX_INSTANCE", settings.sandbox_instance)
        monkeypatch.delenv("MONGODB_URI", raising=False)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr("sys.stdin", io.StringIO("hello\nplot column b of this\n"))

        code = cli.main(["chat", "--user", "term", "--attach", str(csv)])
    finally:
        fake.stop()

    out, err = capsys.readouterr()
    assert code == 0
    assert "kept for this session only" not in err  # the embedded store keeps them
    assert (data_dir / "codeinterp.sqlite3").is_file()
    assert "Hi there." in out
    assert "--- code (ok) ---" in out and 'load_file("data.csv")' in out
    path = out.split("file: ", 1)[1].split(" (", 1)[0]
    # The copy next to the user is made from the stored output.
    assert path.startswith(str(tmp_path / "outputs-chat-")) and path.endswith(".png")
    assert open(path, "rb").read(4) == b"\x89PNG"
    assert not list((data_dir / "staging").glob("chat-*"))
    assert "status=ok stdout=rows 2 files=['plot.png']" in out


class Events(TurnEvents):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def text_delta(self, text: str) -> None:
        if not self.seen or not self.seen[-1].startswith("text:"):
            self.seen.append("text:")
        self.seen[-1] += text

    def run_started(self, number: int, code: str) -> None:
        self.seen.append(f"start {number}")

    async def run_finished(self, run) -> None:
        self.seen.append(f"done {run.number} {run.result.status.value} {len(run.files)}")


async def test_streamed_text_and_two_tool_calls_in_one_reply_run_in_order(
    fake_openai, make_chat, runner, data_dir
):
    service = make_chat(runner, data_dir)
    fake_openai.add(
        tool_calls(
            call("print(6 * 7)"),
            call("open('note.txt', 'w').write('hi')"),
            text="Two things at once.",
        ),
        lambda body: reply("Both ran: " + last_tool_result(body)["status"]),
    )
    events = Events()

    answer = await service.turn("e2e-stream", "c1", "do two things", observer=events)

    assert events.seen == [
        "text:Two things at once.",
        "start 1",
        "done 1 ok 0",
        "start 2",
        "done 2 ok 1",
        "text:Both ran: ok",
    ]
    assert [run.number for run in answer.runs] == [1, 2]
    assert answer.runs[0].result.stdout == "42\n"
    assert answer.text == "Two things at once.\n\nBoth ran: ok"
    # both runs can be found again, and run again with the user's files as they are now
    assert [n for n, _ in await service.run_codes("e2e-stream", "c1", answer.turn_id)] == [1, 2]
    again = await service.rerun("e2e-stream", "c1", answer.turn_id, 1)
    assert again.runs[0].result.stdout == "42\n" and again.runs[0].number == 1
    assert len(fake_openai.requests) == 2  # a re-run does not ask the model
    turns = await service.records.load_turns("e2e-stream", "c1")
    assert len(turns) == 1  # nor change the conversation


LIST_MOUNT = """
import os, json
print(json.dumps({"mount": sorted(os.listdir("/mnt/data")), "listed": [f.name for f in list_files()]}))
open("made-here.txt", "w").write("x");
"""


async def test_a_server_turn_never_mounts_a_dm_file(fake_openai, make_chat, runner, data_dir):
    service = make_chat(runner, data_dir)
    store = service.store
    private = await store.save("e2e-scope", "private.csv", b"a\n1\n", scope="dm")
    shared = await store.save("e2e-scope", "shared.csv", b"a\n2\n", scope="guild:9")
    fake_openai.add(tool_call(LIST_MOUNT), answer_from_result)

    answer = await service.turn("e2e-scope", "c9", "what is mounted?", scope="guild:9")

    seen = json.loads(answer.runs[0].result.stdout)
    assert seen["listed"] == ["shared.csv"]
    assert seen["mount"] == [store.absolute_path(shared).name]  # the DM file is not on disk there
    assert store.absolute_path(private).name not in seen["mount"]
    outputs = {f.name: f.scope for f in await store.list("e2e-scope")}
    assert outputs["made-here.txt"] == "guild:9"  # outputs take the conversation's scope
    assert not any((data_dir / "runs").glob("*-inputs"))  # the linked mount folder is gone

    # named by id, the DM file is used in that one turn
    fake_openai.add(tool_call(LIST_MOUNT), answer_from_result)
    answer = await service.turn("e2e-scope", "c9", f"use {private.file_id}", scope="guild:9")
    seen = json.loads(answer.runs[0].result.stdout)
    assert set(seen["listed"]) == {"shared.csv", "private.csv", "made-here.txt"}


async def test_a_run_gets_at_most_the_sandbox_seconds_left_today(
    fake_openai, make_chat, runner, data_dir
):
    from app.chat import MemoryChatRecords
    from app.chat.budget import DailyBudget
    from app.chat.records import DailyAmounts, DailyLimits

    records = MemoryChatRecords()
    budget = DailyBudget(records, DailyLimits(seconds=13))
    await records.add_daily("e2e-budget", budget.day(), DailyAmounts(seconds=10), None)
    service = make_chat(runner, data_dir, records=records, budget=budget)
    fake_openai.add(tool_call("import time\ntime.sleep(20)\nprint('done')"), answer_from_result)

    answer = await service.turn("e2e-budget", "c1", "sleep for a while")

    result = answer.runs[0].result
    assert result.status is RunStatus.TIMEOUT and result.timeout_seconds == 3
    assert "Only 3 s of today's code execution time were left" in answer.notices[0]
    used = (await records.daily_usage("e2e-budget", budget.day())).seconds
    assert 12.5 <= used <= 13.5  # what ran was counted, not the 20 s asked for


NOTEBOOK_STEPS = [
    'df = load_file("sales.csv")\ndef per_region(frame):\n    return frame.groupby("region").units.sum()',
    "print(per_region(df).to_dict())",
    'import matplotlib.pyplot as plt\nper_region(df).plot(kind="bar")\nplt.show()',
    "df.describe()",
]


async def test_a_conversation_keeps_its_names_like_a_notebook_until_reset(
    fake_openai, make_chat, runner, data_dir
):
    """The issue's scenario: load, reuse, plot, describe; /reset; another user never sees it."""
    service = make_chat(runner, data_dir)
    sales = b"region,units\nnorth,3\nsouth,4\nnorth,5\n"

    def result(body):
        return reply(json.dumps(last_tool_result(body)))

    results = []
    for number, code in enumerate(NOTEBOOK_STEPS):
        fake_openai.add(tool_call(code), result)
        uploads = [Upload("sales.csv", sales)] if number == 0 else []
        answer = await service.turn("nb-user", "channel-7", f"step {number}", uploads)
        assert answer.error == ""
        results.append(json.loads(answer.text))

    assert [r["status"] for r in results] == ["ok"] * 4
    assert results[1]["stdout"] == "{'north': 8, 'south': 4}\n"
    assert [f["name"] for f in results[2]["files"]] == ["figure-1.png"]
    assert results[3]["stdout"].split()[:2] == ["units", "count"]
    assert "mean" in results[3]["stdout"]
    # the model was told that names survive between calls, and what is preinstalled
    description = fake_openai.requests[0]["tools"][0]["function"]["description"]
    assert "share their top-level names like notebook cells" in description
    assert "pandas==" in description

    # a second user in the same channel never sees the first user's names
    fake_openai.add(tool_call("print(per_region(df))"), result)
    other = json.loads((await service.turn("nb-other", "channel-7", "and me?")).text)
    assert other["status"] == "error" and "NameError" in other["stderr"]

    assert await service.reset("nb-user", "channel-7") is True
    fake_openai.add(tool_call("print(df)"), result)
    after = json.loads((await service.turn("nb-user", "channel-7", "again")).text)
    assert after["status"] == "error"
    assert "NameError: name 'df' is not defined" in after["stderr"]


async def test_a_name_that_cannot_be_kept_is_named_to_the_model(
    fake_openai, make_chat, runner, data_dir
):
    service = make_chat(runner, data_dir)
    fake_openai.add(
        tool_call("import sqlite3\ncon = sqlite3.connect(':memory:')\nrows = [1, 2]"),
        lambda body: reply(json.dumps(last_tool_result(body))),
    )
    answer = await service.turn("nb-notes", "c1", "connect")
    seen = json.loads(answer.text)
    assert seen["status"] == "ok"
    assert seen["state_notes"] == ["not kept: con (sqlite3.Connection)"]
