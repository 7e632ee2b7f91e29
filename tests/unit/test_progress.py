"""The live run status: late, updated, queue position, edited to the outcome."""

import asyncio
from unittest import mock

from app.bot.progress import RunProgress, outcome_text
from app.sandbox import RunResult, RunStatus
from tests.fakes.discord_mocks import mock_sent_message


async def test_fast_runs_show_no_status_message():
    send = mock.AsyncMock()
    progress = RunProgress(send, delay=0.5, interval=0.5)
    progress.run_started("print(1)")
    await progress.run_finished(RunResult(run_id="r", status=RunStatus.OK, exec_seconds=0.1))
    send.assert_not_awaited()


async def test_slow_runs_show_queue_then_running_then_the_outcome():
    sent = mock_sent_message()
    send = mock.AsyncMock(return_value=sent)
    waiting = [2]
    progress = RunProgress(send, waiting=lambda: waiting[0], delay=0.05, interval=0.05)
    progress.run_started("import time")
    progress.run_queued(2)
    await asyncio.sleep(0.12)
    assert send.await_args.args[0].startswith("Waiting for a free sandbox (position 2")
    waiting[0] = 0
    await asyncio.sleep(0.12)
    edits = [c.kwargs["content"] for c in sent.edit.await_args_list]
    assert any(e.startswith("Running your code (") for e in edits)
    result = RunResult(run_id="r", status=RunStatus.TIMEOUT, timeout_seconds=1, exec_seconds=1.0)
    await progress.run_finished(result)
    assert sent.edit.await_args.kwargs["content"] == (
        "The code ran longer than the 1 s limit and was stopped."
    )


async def test_a_failing_status_message_never_fails_the_run():
    send = mock.AsyncMock(side_effect=RuntimeError("discord is down"))
    progress = RunProgress(send, delay=0.01, interval=0.01)
    progress.run_started("x")
    await asyncio.sleep(0.05)
    await progress.run_finished(RunResult(run_id="r", status=RunStatus.OK))
    assert send.await_count == 1


def test_outcomes_read_well():
    assert outcome_text(RunResult(run_id="r", status=RunStatus.OK, exec_seconds=3.21)) == (
        "Code finished in 3.2 s."
    )
    assert outcome_text(
        RunResult(run_id="r", status=RunStatus.SANDBOX_ERROR, message="/var/run/docker.sock gone")
    ) == ("The code sandbox is unavailable right now. Please try again later.")
