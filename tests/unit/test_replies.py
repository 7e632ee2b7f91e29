"""Answer rendering: Discord's 2000-character limit, closed code blocks, one line per run, short
output inline and the rest as a file, the Code button's reply, attachments grouped by size."""

from datetime import UTC, datetime

from app.bot.attachments import Attachment, group_attachments
from app.bot.replies import code_message, compose, plan_answer, run_line, split_message
from app.chat import ChatAnswer, CodeRun, DeliveredFile
from app.files import StoredFile
from app.sandbox import RunResult, RunStatus


def stored_file(name: str, file_id: str, size: int = 10) -> StoredFile:
    return StoredFile(
        file_id=file_id,
        user_id="1",
        name=name,
        type=name.rsplit(".", 1)[-1],
        category="tabular",
        size=size,
        sha256="0" * 64,
        path=f"users/1/{file_id}.csv",
        source="upload",
        uploaded_at=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=None,
    )


def result(status=RunStatus.OK, **kwargs) -> RunResult:
    return RunResult(run_id="r", status=status, **kwargs)


def test_short_text_is_one_chunk():
    assert split_message("hello") == ["hello"]


def test_long_text_splits_under_the_limit_and_keeps_code_blocks_closed():
    code = "\n".join(f"print({i})  # a line of code" for i in range(300))
    text = "Here is the code:\n```python\n" + code + "\n```\nDone."
    chunks = split_message(text)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk) <= 2000
        assert chunk.count("```") % 2 == 0, chunk[:80]
    assert chunks[1].startswith("```python")  # reopened with its language
    rejoined = "\n".join(chunks)
    assert all(f"print({i})" in rejoined for i in range(300))


def test_a_single_huge_line_is_cut_and_an_unclosed_block_closed():
    chunks = split_message("```\n" + "x" * 5000)
    assert all(len(c) <= 2000 for c in chunks)
    assert all(c.count("```") % 2 == 0 for c in chunks)
    assert sum(c.count("x") for c in chunks) == 5000


def test_one_compact_line_per_run_whatever_its_end():
    lines = [
        run_line(CodeRun("c", result(exec_seconds=1.23), number=1)),
        run_line(
            CodeRun(
                "c",
                result(
                    RunStatus.ERROR,
                    exec_seconds=0.3,
                    stderr="Traceback (most recent call last):\n  ...\nNameError: name `x`\n",
                ),
                number=2,
            )
        ),
        run_line(CodeRun("c", result(RunStatus.TIMEOUT, timeout_seconds=30), number=3)),
        run_line(CodeRun("c", result(RunStatus.OOM, exec_seconds=2), number=4)),
        run_line(CodeRun("c", result(RunStatus.SANDBOX_ERROR, message="/var/run/x"), number=5)),
    ]
    assert lines == [
        "-# Run 1: finished in 1.2 s",
        "-# Run 2: error after 0.3 s · `NameError: name 'x'`",
        "-# Run 3: stopped at the 30 s time limit",
        "-# Run 4: ran out of memory after 2.0 s and was stopped",
        "-# Run 5: the sandbox is unavailable right now",
    ]


def test_short_output_is_inline_and_the_rest_goes_as_a_text_file():
    stdout = "".join(f"row {i}\n" for i in range(25))
    runs = [
        CodeRun("c", result(RunStatus.ERROR, stderr="ValueError: bad"), number=1),
        CodeRun("c", result(stdout=stdout, exec_seconds=0.5), number=2),
    ]
    body, files = compose(runs, "Here are the rows.")
    assert body.startswith("-# Run 1: error after 0.0 s · `ValueError: bad`\n-# Run 2: finished")
    block = body.split("```\n", 1)[1].split("\n```", 1)[0]
    assert block.splitlines() == [f"row {i}" for i in range(10)]  # the first ten lines
    assert "-# The stdout continues in output-2.txt." in body
    assert body.endswith("Here are the rows.")
    assert [f.filename for f in files] == ["output-2.txt"]
    assert files[0].data == stdout.encode()  # the whole of it


def test_a_failed_runs_traceback_end_is_shown_and_blocks_cannot_be_broken_out_of():
    stderr = "".join(f"  frame {i}\n" for i in range(30)) + "ZeroDivisionError: ```oops```\n"
    run = CodeRun("c", result(RunStatus.ERROR, stdout="```@everyone", stderr=stderr), number=1)
    body, files = compose([run], "")
    assert body.count("```") == 4  # two blocks, each opened and closed once
    assert "ZeroDivisionError: `\u200b``oops`\u200b``" in body  # the end, escaped
    assert "frame 0" not in body
    assert [f.filename for f in files] == ["errors.txt"]
    assert "-# The stderr ends in errors.txt." in body


def test_one_line_of_output_is_enough_and_long_lines_are_capped():
    body, files = compose([CodeRun("c", result(stdout="x" * 5000))], "")
    assert len(body) < 1200 and [f.filename for f in files] == ["output.txt"]


def _file(tmp_path, name, size, file_id):
    path = tmp_path / name
    path.write_bytes(b"x" * min(size, 10))
    return DeliveredFile(name=name, path=path, size=size, file_id=file_id)


def test_files_attach_and_oversize_ones_are_named_by_id(tmp_path):
    files = tuple(_file(tmp_path, f"p{i}.png", 100, f"id{i}") for i in range(12))
    big = _file(tmp_path, "huge.csv", 50 * 1024**2, "bigid")
    run = CodeRun("code", result(stdout="y\n" * 3000), files + (big,))
    answer = ChatAnswer(text="Plots.", runs=[run])

    plan = plan_answer(answer, upload_limit=10 * 1024**2)

    assert "Plots." in plan.text
    assert "huge.csv (50.0 MB) is too large to attach here; it is stored as file bigid" in (
        plan.text
    )
    names = [a.filename for a in plan.attachments]
    assert names == ["output.txt"] + [f"p{i}.png" for i in range(12)]
    assert plan.attachments[0].data == b"y\n" * 3000
    assert plan.attachments[1].file_id == "id0"


def test_an_error_keeps_the_runs_and_files_before_it(tmp_path):
    plot = _file(tmp_path, "plot.png", 100, "pid")
    answer = ChatAnswer(
        runs=[CodeRun("c", result(), (plot,))],
        error="The model service had an error. Please try again in a moment.",
    )
    plan = plan_answer(answer, 1000)
    assert plan.text.startswith("-# Run 1: finished in 0.0 s · 1 file")
    assert plan.text.endswith("The model service had an error. Please try again in a moment.")
    assert [a.filename for a in plan.attachments] == ["plot.png"]
    assert plan_answer(ChatAnswer(error="x"), 1000).text == "x"


def test_notices_are_shown_under_the_answer_once():
    timeout = result(RunStatus.TIMEOUT, timeout_seconds=1)
    answer = ChatAnswer(
        text="Sorry.",
        runs=[CodeRun("c", timeout)],
        notices=["The code ran longer than the 1 s limit and was stopped.", "a.exe: not stored"],
        trimmed_turns=3,
    )
    assert plan_answer(answer, 1000).text == (
        "-# Run 1: stopped at the 1 s time limit\n\nSorry.\n\n-# a.exe: not stored\n"
        "-# 3 earlier turns of this conversation were left out to fit the model's context."
    )
    assert plan_answer(ChatAnswer(), 1000).text == "(no answer)"


def test_the_code_reply_is_blocks_when_short_and_files_when_long():
    text, files = code_message([(1, "print(1)"), (2, "print('```')")])
    assert text == "Run 1:\n```python\nprint(1)\n```\nRun 2:\n```python\nprint('`\u200b``')\n```"
    assert files == []
    text, files = code_message([(1, "x = 1\n" * 400), (2, "print(2)")])
    assert [f.filename for f in files] == ["run-1.py", "run-2.py"]
    assert files[0].data == ("x = 1\n" * 400).encode() and "run-1.py" in text
    text, files = code_message([(n, "y = 2\n" * 50) for n in range(1, 13)])
    assert [f.filename for f in files] == ["runs.py"] and b"# --- run 12 ---" in files[0].data


def test_files_are_grouped_by_count_and_by_the_request_size_limit():
    mb = 1024**2
    files = [Attachment(f"f{i}", size=size) for i, size in enumerate([4 * mb] * 5 + [1] * 12)]
    groups = group_attachments(files, request_limit=10 * mb)
    sizes = [sum(a.size for a in g) for g in groups]
    assert all(s <= 10 * mb for s in sizes)
    assert all(len(g) <= 10 for g in groups)
    assert [len(g) for g in groups] == [2, 2, 10, 3]  # 4+4 MB, 4+4 MB, 4 MB + 9 small, 3 small
    assert [a.filename for g in groups for a in g] == [f.filename for f in files]  # in order
    alone = group_attachments([Attachment("big", size=11 * mb), Attachment("s", size=1)], 10 * mb)
    assert [[a.filename for a in g] for g in alone] == [["big"], ["s"]]
