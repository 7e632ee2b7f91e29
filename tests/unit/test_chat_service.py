"""ChatService against the fake OpenAI-compatible server (the real SDK over HTTP); no runs."""

import json

import pytest

from app.chat import ChatRateLimit, MemoryChatRecords, Upload
from app.config import Settings
from tests.fakes.file_store import memory_store
from tests.fakes.openai_server import error, reply, tool_call


async def test_plain_answer_goes_through_the_sdk_and_is_remembered(
    fake_openai,
    make_chat,
    runner,
    tmp_path,
):
    records = MemoryChatRecords()
    service = make_chat(runner, tmp_path, records=records)
    fake_openai.add(reply("Hello! How can I help?"), reply("You said hi before."))

    first = await service.turn("u1", "c1", "hi")
    second = await service.turn("u1", "c1", "what did I say?")

    assert first.text == "Hello! How can I help?"
    assert second.text == "You said hi before."
    assert fake_openai.headers[0]["Authorization"] == "Bearer sk-test-secret-123"
    sent = fake_openai.requests[1]["messages"]
    contents = [m["content"] for m in sent if m["role"] in ("user", "assistant")]
    assert contents == ["hi", "Hello! How can I help?", "what did I say?"]
    assert fake_openai.requests[0]["tools"][0]["function"]["name"] == "execute_python_code"
    assert "load_file" in fake_openai.requests[0]["tools"][0]["function"]["description"]
    # another channel is another conversation
    fake_openai.add(reply("fresh"))
    await service.turn("u1", "c2", "hello")
    assert [m["role"] for m in fake_openai.requests[2]["messages"]] == ["system", "system", "user"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, "credentials"), (429, "rate limiting"), (500, "had an error"), (404, "not available")],
)
async def test_model_errors_become_friendly_sentences(
    fake_openai,
    make_chat,
    runner,
    tmp_path,
    status,
    expected,
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(error(status, "Incorrect API key sk-test-secret-123 at /srv/secret/path"))

    answer = await service.turn("u1", "c1", "hi")

    assert expected in answer.error
    assert "sk-test" not in answer.error and "/srv" not in answer.error
    assert answer.text == ""
    # a failed turn leaves no half-conversation behind
    assert await service.records.load_turns("u1", "c1") == []


async def test_usage_and_cost_are_recorded_per_request(fake_openai, make_chat, runner, tmp_path):
    records = MemoryChatRecords()
    service = make_chat(runner, tmp_path, records=records)
    fake_openai.add(reply("one", prompt_tokens=1000, completion_tokens=500), reply("two"))
    await service.turn("u1", "c1", "a")
    await service.set_model("u1", "local-llama")
    await service.turn("u1", "c1", "b")

    totals = {t.model: t for t in await records.usage_totals("u1")}
    assert totals["gpt-4o-mini"].prompt_tokens == 1000
    assert totals["gpt-4o-mini"].completion_tokens == 500
    assert totals["gpt-4o-mini"].cost == pytest.approx((1000 * 0.15 + 500 * 0.60) / 1e6)
    assert totals["local-llama"].cost is None  # unknown price stays unknown, never 0
    assert fake_openai.requests[1]["model"] == "local-llama"


async def test_cached_prompt_tokens_are_recorded_and_priced_lower(
    fake_openai, make_chat, runner, tmp_path
):
    records = MemoryChatRecords()
    service = make_chat(runner, tmp_path, records=records)
    fake_openai.add(reply("one", prompt_tokens=1000, completion_tokens=0, cached_tokens=800))
    answer = await service.turn("u1", "c1", "a")
    (record,) = answer.usage
    assert record.cached_tokens == 800
    assert record.cost == pytest.approx((200 * 0.15 + 800 * 0.075) / 1e6)
    (total,) = await records.usage_totals("u1")
    assert total.cached_tokens == 800


async def test_model_choice_is_limited_to_the_allowed_list(
    fake_openai,
    make_chat,
    runner,
    tmp_path,
):
    service = make_chat(runner, tmp_path)
    assert await service.set_model("u1", "gpt-4o")
    assert not await service.set_model("u1", "some-expensive-model")
    assert await service.model_for("u1") == "gpt-4o"


async def test_unsupported_or_too_large_upload_is_refused_and_not_stored(
    fake_openai,
    make_chat,
    runner,
    tmp_path,
):
    store = memory_store(tmp_path, max_file_bytes=100)
    service = make_chat(runner, tmp_path, store=store)
    fake_openai.add(reply("ok"))

    answer = await service.turn(
        "u1",
        "c1",
        "look at these",
        [
            Upload("virus.exe", b"MZ"),
            Upload("big.csv", b"x" * 500),
            Upload("ok.csv", b"a,b\n1,2\n"),
        ],
    )

    assert "virus.exe: this file type is not supported." in answer.notices
    assert any(n.startswith("big.csv:") and "limit" in n for n in answer.notices)
    assert [f.name for f in await store.list("u1")] == ["ok.csv"]
    user_message = fake_openai.requests[0]["messages"][-1]["content"]
    assert "ok.csv" in user_message and "big.csv" not in user_message
    system = fake_openai.requests[0]["messages"][1]["content"]
    assert "ok.csv" in system and "expires" in system


async def test_upload_without_text_is_stored_and_acknowledged_without_a_model_call(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    answer = await service.turn("u1", "c1", "", [Upload("data.csv", b"a,b\n1,2\n")])
    assert answer.text.startswith("Stored data.csv (id ")
    assert fake_openai.requests == []


async def test_images_go_to_vision_models_as_image_inputs(fake_openai, make_chat, runner, tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (800).to_bytes(4, "big") * 2 + b"\x00" * 20
    service = make_chat(runner, tmp_path)
    await service.set_model("u1", "gpt-4o")
    fake_openai.add(reply("a square"), reply("text only"))
    await service.turn("u1", "c1", "what is this?", [Upload("pic.png", png)])
    parts = fake_openai.requests[0]["messages"][-1]["content"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    # non-vision models get the file listed as text only
    await service.set_model("u1", "local-llama")
    await service.turn("u1", "c1", "and this?", [Upload("pic2.png", png)])
    assert isinstance(fake_openai.requests[1]["messages"][-1]["content"], str)


async def test_bad_tool_arguments_are_reported_to_the_model_without_running(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(
        tool_call("", raw_arguments="{not json"),
        tool_call("print(1)", name="shell"),
        reply("sorry"),
    )
    answer = await service.turn("u1", "c1", "run something")
    results = [
        json.loads(m["content"]) for m in fake_openai.requests[2]["messages"] if m["role"] == "tool"
    ]
    assert results[0] == {"status": "invalid_call", "message": "the arguments are not valid JSON"}
    assert "no tool named 'shell'" in results[1]["message"]
    assert answer.runs == [] and answer.text == "sorry"


async def test_tool_rounds_are_bounded(fake_openai, make_chat, runner, tmp_path):
    service = make_chat(runner, tmp_path, max_tool_rounds=2)
    fake_openai.add(
        tool_call("", raw_arguments="{}"), tool_call("", raw_arguments="{}"), reply("giving up")
    )
    answer = await service.turn("u1", "c1", "loop")
    assert answer.text == "giving up"
    assert "tools" not in fake_openai.requests[2]  # the last round offers no tool
    turns = await service.records.load_turns("u1", "c1")
    roles = [m["role"] for m in turns[0].messages]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert turns[0].id == answer.turn_id and turns[0].runs == []  # nothing ran


async def test_history_is_trimmed_by_whole_turns_to_the_budget(
    fake_openai,
    make_chat,
    runner,
    tmp_path,
):
    service = make_chat(runner, tmp_path, history_tokens=1200)
    for i in range(6):
        fake_openai.add(reply(f"answer {i} " + "word " * 300))
        await service.turn("u1", "c1", f"question {i}")
    sent = [m for m in fake_openai.requests[-1]["messages"] if m["role"] != "system"]
    assert sent[-1]["content"] == "question 5"
    assert 1 <= len(sent[:-1]) // 2 < 5  # older turns dropped, newest kept
    assert sent[0]["content"].startswith("question")  # never half a turn


async def test_rate_limit_and_one_turn_at_a_time(fake_openai, make_chat, runner, tmp_path):
    now = [0.0]
    service = make_chat(runner, tmp_path, rate_limit=ChatRateLimit(2, clock=lambda: now[0]))
    fake_openai.add(reply("1"), reply("2"), reply("3"))
    assert (await service.turn("u1", "c1", "a")).text == "1"
    assert (await service.turn("u1", "c1", "b")).text == "2"
    limited = await service.turn("u1", "c1", "c")
    assert "too fast" in limited.error and "60 s" in limited.error
    now[0] = 61
    assert (await service.turn("u1", "c1", "d")).text == "3"
    service._busy.add("u2")
    assert "previous message" in (await service.turn("u2", "c1", "x")).error


async def test_sandbox_unavailable_is_a_friendly_notice_without_internals(
    fake_openai, make_chat, tmp_path
):
    from docker.errors import DockerException

    from app.sandbox.docker_engine import DockerEngine
    from app.wiring import build_runner
    from tests.fakes.openai_server import last_tool_result

    def no_engine():
        raise DockerException("Error while fetching server API version: /var/run/secret.sock")

    settings = Settings(_env_file=None, data_dir=tmp_path)
    runner = build_runner(settings, DockerEngine(client_factory=no_engine))
    service = make_chat(runner, tmp_path)
    seen = {}

    def answer(body):
        seen.update(last_tool_result(body))
        return reply("I could not run the code.")

    fake_openai.add(tool_call("print(1)"), answer)
    result = await service.turn("u1", "c1", "run it")
    runner.engine.close()

    assert result.notices == ["The code sandbox is unavailable right now. Please try again later."]
    assert seen["status"] == "sandbox_error"
    assert seen["message"] == "the sandbox is unavailable right now; try again later"
    assert "sock" not in json.dumps(seen)


def test_the_model_reads_long_output_as_head_and_tail_flagged_as_cut():
    from app.chat.tools import tool_result
    from app.sandbox import RunResult, RunStatus

    stderr = "line\n" * 20_000 + "ZeroDivisionError: division by zero\n"
    seen = json.loads(tool_result(RunResult(run_id="r", status=RunStatus.ERROR, stderr=stderr)))
    assert seen["stderr"].endswith("ZeroDivisionError: division by zero\n")
    assert "characters cut" in seen["stderr"] and len(seen["stderr"]) < 21_000
    assert seen["stderr_truncated"] is True and seen["stdout_truncated"] is False
