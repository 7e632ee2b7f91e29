"""Links in what the bot posts: inert unless allowed, masked links unmasked, code left alone."""

import pytest

from app.bot.sending import inert_links, link_allowed

ALLOWED = ("docs.python.org", "pandas.pydata.org")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("see https://evil.example/?q=secret.", "see `https://evil.example/?q=secret`."),
        ("[click](https://evil.example/x?d=1)", "click (`https://evil.example/x?d=1`)"),
        ('[x](<https://evil.example/a> "title")', "x (`https://evil.example/a`)"),
        ("[https://docs.python.org](https://evil.example/)", None),
        ("<https://evil.example/a>", "`https://evil.example/a`"),
        ("**https://evil.example/b**", "**`https://evil.example/b`**"),
        ("mailto:x@evil.example", "`mailto:x@evil.example`"),
        ("https://docs.python.org/3/", "<https://docs.python.org/3/>"),
        ("https://api.pandas.pydata.org/x", "<https://api.pandas.pydata.org/x>"),
        ("https://docs.python.org.evil.example/", "`https://docs.python.org.evil.example/`"),
        ("https://docs.python.org@evil.example/", "`https://docs.python.org@evil.example/`"),
        ("https://evil.example\\@docs.python.org/", "`https://evil.example\\@docs.python.org/`"),
        ("javascript://docs.python.org/%0aalert(1)", "`javascript://docs.python.org/%0aalert(1)`"),
        ("```\nhttps://in.a.block/\n```", "```\nhttps://in.a.block/\n```"),
        ("`https://inline.code/`", "`https://inline.code/`"),
    ],
)
def test_only_allowed_links_stay_clickable(text, shown):
    result = inert_links(text, ALLOWED)
    if shown is not None:
        assert result == shown
    assert "](" not in result
    outside_code = result.split("`")[::2]  # what Discord would link: text outside inline code
    assert not any("evil.example" in part for part in outside_code)


def test_nothing_is_allowed_by_default():
    assert inert_links("https://docs.python.org/3/") == "`https://docs.python.org/3/`"
    assert not link_allowed("https://docs.python.org/", ())


def test_discord_markup_in_angle_brackets_is_left_alone():
    text = "resets <t:1796169600:R>, ask <@123> in <#456> <:ok:789>"
    assert inert_links(text) == text
