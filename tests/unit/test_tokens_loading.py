"""tiktoken's encoding files are loaded off the event loop, and never waited for long."""

import asyncio
import threading

from app.chat import tokens


class FakeEncoding:
    def encode(self, text, disallowed_special=()):
        return text.split()


async def test_the_encoding_loads_in_a_thread_and_counts_are_estimates_until_then(monkeypatch):
    release = threading.Event()
    loaded_on = []

    def slow_load(model):
        loaded_on.append(threading.get_ident())
        release.wait(10)  # a download that hangs behind a firewall
        return FakeEncoding()

    monkeypatch.setattr(tokens, "_load", slow_load)
    monkeypatch.setattr(tokens, "LOAD_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "_loading", {})
    text = "one two three four five six seven eight"

    await tokens.prepare("gpt-test")  # returns although the load has not finished

    assert not release.is_set() and loaded_on and loaded_on[0] != threading.get_ident()
    assert tokens.count_text(text, "gpt-test") == len(text) // 4 + 1  # the estimate
    await tokens.prepare("gpt-test")  # a second turn does not start a second download
    assert len(loaded_on) == 1

    release.set()
    await asyncio.wait_for(tokens._loading["gpt-test"], 5)
    assert tokens.count_text(text, "gpt-test") == 8  # the encoding, once it is there
    await tokens.prepare("gpt-test")
    assert len(loaded_on) == 1


async def test_an_encoding_that_cannot_be_fetched_means_estimates(monkeypatch):
    def offline(model):
        raise ConnectionError("no network")

    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "_loading", {})
    import tiktoken

    monkeypatch.setattr(tiktoken, "encoding_for_model", offline)
    await tokens.prepare("gpt-4o")
    assert tokens._loaded["gpt-4o"] is None
    assert tokens.count_text("abcd" * 10, "gpt-4o") == 11
