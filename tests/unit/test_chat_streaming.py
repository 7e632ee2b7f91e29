"""The model's answer streamed (SSE through the real SDK against the fake server): text as it
comes, tool calls assembled from fragments, usage from the last chunk or estimated, the plain
request when streaming is off; and the chat-side rules around it (vision formats, reply context,
turn ids, history kept consistent)."""

import asyncio

import pytest
from openai.types.chat import ChatCompletionChunk

from app.chat import ReplyContext, TurnEvents, Upload
from app.chat.history import complete_prefix, run_arguments
from app.chat.records import Turn
from app.chat.service import RUN_GONE
from app.chat.streaming import ReplyAssembler
from tests.fakes.openai_server import call, error, reply, tool_call, tool_calls


class Recorder(TurnEvents):
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def model_started(self) -> None:
        self.events.append(("model",))

    def text_delta(self, text: str) -> None:
        self.events.append(("text", text))


def chunk(delta=None, usage=None, index=0):
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [] if delta is None else [{"index": index, "delta": delta}],
            **({"usage": usage} if usage else {}),
        }
    )


def test_tool_calls_are_assembled_from_their_fragments():
    assembler = ReplyAssembler()
    pieces = [
        chunk({"role": "assistant", "content": "Let me "}),
        chunk({"content": "check."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_x", "function": {"name": "run", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_y", "function": {"name": "run", "arguments": '{"b"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": ": 2}"}}]}),
        chunk({"content": "x"}, index=1),  # a second choice nobody asked for
        chunk(usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}),
    ]  # fmt: skip
    texts = [assembler.add(piece) for piece in pieces]
    assert "".join(texts) == "Let me check."
    answer = assembler.reply()
    assert answer.content == "Let me check."
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [
        ("call_x", "run", '{"a": 1}'),
        ("call_y", "run", '{"b": 2}'),
    ]
    assert answer.usage == (12, 5, 0)


def test_a_call_without_an_id_gets_one():
    assembler = ReplyAssembler()
    assembler.add(
        chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]})
    )
    assert assembler.reply().tool_calls[0].id.startswith("call_")
    assert ReplyAssembler().reply().usage is None


async def test_text_streams_to_the_observer_and_usage_comes_from_the_last_chunk(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(reply("Hello there, how can I help you today?", 321, 54))
    seen = Recorder()
    answer = await service.turn("u1", "c1", "hi", observer=seen)
    texts = [e[1] for e in seen.events if e[0] == "text"]
    assert len(texts) > 3 and "".join(texts) == answer.text  # in pieces, as streamed
    assert seen.events[0] == ("model",)
    assert fake_openai.requests[0]["stream"] is True
    assert (answer.usage[0].prompt_tokens, answer.usage[0].completion_tokens) == (321, 54)


async def test_usage_is_estimated_when_a_streaming_server_sends_none(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(tool_call("", raw_arguments="{}", usage=False), reply("ok " * 40, usage=None))
    answer = await service.turn("u1", "c1", "hi")
    assert len(answer.usage) == 2
    assert all(u.prompt_tokens > 0 and u.completion_tokens > 0 for u in answer.usage)


async def test_streaming_off_sends_plain_requests(fake_openai, make_chat, runner, tmp_path):
    service = make_chat(runner, tmp_path, stream=False)
    fake_openai.add(reply("plain", 10, 2))
    seen = Recorder()
    answer = await service.turn("u1", "c1", "hi", observer=seen)
    assert answer.text == "plain" and "stream" not in fake_openai.requests[0]
    assert ("text", "plain") in seen.events and answer.usage[0].prompt_tokens == 10


async def test_text_before_a_tool_call_is_kept_in_the_answer(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(
        tool_calls(call("", raw_arguments="{bad"), text="Let me try."), reply("It failed.")
    )
    answer = await service.turn("u1", "c1", "go")
    assert answer.text == "Let me try.\n\nIt failed."
    saved = (await service.records.load_turns("u1", "c1"))[0].messages
    assert saved[1]["content"] == "Let me try." and saved[1]["tool_calls"]


async def test_a_stream_cut_midway_is_a_friendly_error_and_remembers_nothing(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(reply("This will not arrive in full", cut=True))
    answer = await service.turn("u1", "c1", "hi")
    assert answer.error and "Traceback" not in answer.error
    assert await service.records.load_turns("u1", "c1") == []


async def test_tool_call_ids_a_server_repeats_are_made_unique(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(
        tool_calls(call("", raw_arguments="{}", call_id="call_0")),
        tool_calls(call("", raw_arguments="{}", call_id="call_0")),
        reply("done"),
    )
    await service.turn("u1", "c1", "go")
    messages = (await service.records.load_turns("u1", "c1"))[0].messages
    ids = [c["id"] for m in messages for c in m.get("tool_calls") or ()]
    results = [m["tool_call_id"] for m in messages if m["role"] == "tool"]
    assert len(set(ids)) == 2 and ids == results


async def test_errors_before_any_text_are_still_friendly(fake_openai, make_chat, runner, tmp_path):
    service = make_chat(runner, tmp_path)
    fake_openai.add(error(429))
    assert "rate limiting" in (await service.turn("u1", "c1", "hi")).error


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (64).to_bytes(4, "big") * 2 + b"\x00" * 20
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24
TIFF = b"II*\x00\x08\x00\x00\x00" + b"\x00" * 24


@pytest.mark.parametrize(
    ("name", "data", "as_image"),
    [
        ("pic.png", PNG, True),
        ("pic.webp", WEBP, True),
        ("scan.tiff", TIFF, False),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', False),
        ("big.png", PNG + b"\x00" * 3000, False),  # over the (test's) size cap
    ],
)
async def test_only_png_jpeg_webp_gif_under_the_cap_go_to_vision_models(
    fake_openai, make_chat, runner, tmp_path, name, data, as_image
):
    service = make_chat(runner, tmp_path, vision_max_bytes=2000)
    await service.set_model("u1", "gpt-4o")
    fake_openai.add(reply("seen"))
    await service.turn("u1", "c1", "what is this?", [Upload(name, data)])
    content = fake_openai.requests[0]["messages"][-1]["content"]
    if as_image:
        assert content[1]["image_url"]["url"].startswith("data:image/")
    else:
        assert isinstance(content, str) and f'"{name}" (id ' in content  # described as a file


async def test_a_reply_without_words_still_asks_about_the_quoted_message(
    fake_openai, make_chat, runner, tmp_path
):
    service = make_chat(runner, tmp_path)
    fake_openai.add(reply("That message says hello."))
    context = ReplyContext(author="ana", text="hello\nworld")
    answer = await service.turn("u1", "c1", "", reply_to=context, turn_id="feed01")
    assert answer.text == "That message says hello." and answer.turn_id == "feed01"
    asked = fake_openai.requests[0]["messages"][-1]["content"]
    assert asked == '[The user is replying to this message from "ana":]\n> hello\n> world'
    assert (await service.records.find_turn("u1", "c1", "feed01")) is not None


def test_a_stopped_turn_keeps_the_calls_that_finished():
    calls = [{"id": i, "type": "function", "function": {"name": "f", "arguments": '{"code": "' + i + '"}'}}
             for i in ("a", "b")]  # fmt: skip
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "a", "content": "{}"},
    ]
    saved = complete_prefix(messages)
    assert [c["id"] for c in saved[1]["tool_calls"]] == ["a"] and len(saved) == 3
    assert complete_prefix(messages[:2]) == messages[:1]
    turn = Turn(messages=saved, id="t", runs=["a"])
    assert run_arguments(turn, 1) == ("a", None)
    assert run_arguments(turn, 2) is None and run_arguments(turn, 0) is None


async def test_rerun_of_a_turn_not_in_history_says_so(fake_openai, make_chat, runner, tmp_path):
    service = make_chat(runner, tmp_path)
    answer = await service.rerun("u1", "c1", "nope", 1)
    assert answer.error == RUN_GONE and answer.runs == []
    assert await service.run_codes("u1", "c1", "nope") == []
    await asyncio.sleep(0)
