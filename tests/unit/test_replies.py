"""Answer rendering: Discord's 2000-character limit, closed code blocks, attachments."""

from app.bot.replies import plan_reply, split_message
from app.chat import ChatAnswer, CodeRun, DeliveredFile
from app.sandbox import RunResult, RunStatus


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


def _file(tmp_path, name, size, file_id):
    path = tmp_path / name
    path.write_bytes(b"x" * min(size, 10))
    return DeliveredFile(name=name, path=path, size=size, file_id=file_id)


def test_files_attach_ten_per_message_and_oversize_ones_are_named(tmp_path):
    files = tuple(_file(tmp_path, f"p{i}.png", 100, f"id{i}") for i in range(12))
    big = _file(tmp_path, "huge.csv", 50 * 1024**2, "bigid")
    result = RunResult(run_id="r", status=RunStatus.OK, stdout="y" * 3000)
    answer = ChatAnswer(text="Plots.", runs=[CodeRun("code", result, files + (big,))])

    messages = plan_reply(answer, upload_limit=10 * 1024**2)

    assert messages[0].content.startswith("Plots.")
    assert "huge.csv (50.0 MB) is too large to attach here; it is stored as file bigid" in (
        messages[0].content
    )
    names = [[a.filename for a in m.attachments] for m in messages]
    assert names[0] == ["output.txt"] + [f"p{i}.png" for i in range(9)]
    assert names[1] == ["p9.png", "p10.png", "p11.png"]
    assert messages[0].attachments[0].data == b"y" * 3000  # long stdout goes as a text file
    assert all(len(m.attachments) <= 10 for m in messages)


def test_an_error_answer_is_only_the_friendly_sentence():
    answer = ChatAnswer(error="The model service is rate limiting us right now.")
    assert [m.content for m in plan_reply(answer, 1000)] == [answer.error]
    assert plan_reply(ChatAnswer(error="x"), 1000)[0].attachments == []


def test_notices_are_shown_under_the_answer():
    answer = ChatAnswer(text="Sorry.", notices=["The code ran longer than the 1 s limit."])
    assert plan_reply(answer, 1000)[0].content == (
        "Sorry.\n\n-# The code ran longer than the 1 s limit."
    )
