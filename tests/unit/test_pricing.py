"""Prices: the most specific entry wins, cached input is cheaper, unknown models have no price."""

import pytest

from app.chat.pricing import PriceTable, price_table
from app.config import Settings

TABLE = PriceTable()


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("o3", "o3"),
        ("o3-mini", "o3-mini"),  # not billed as o3
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o3-pro", "o3-pro"),
        ("o3-2025-04-16", "o3"),
        ("o1", "o1"),
        ("o1-mini", "o1-mini"),
        ("o1-pro", "o1-pro"),
        ("gpt-5", "gpt-5"),
        ("gpt-5-pro", "gpt-5-pro"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("gpt-4.1-nano", "gpt-4.1-nano"),
        ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
    ],
)
def test_the_most_specific_entry_prices_a_model(model, entry):
    assert TABLE.entry_for(model) == entry


def test_own_prices_of_the_expensive_variants():
    assert TABLE.price_of("o3-mini").input < TABLE.price_of("o3").input
    assert TABLE.price_of("o3-pro").output > TABLE.price_of("o3").output
    assert TABLE.price_of("gpt-5-pro").input > TABLE.price_of("gpt-5").input
    assert TABLE.price_of("o1").input == 15.00


@pytest.mark.parametrize("model", ["gpt-4.5-preview", "o3x", "gpt-4oo", "llama3.1:8b", "mystery"])
def test_a_name_that_only_starts_like_an_entry_is_unknown(model):
    # gpt-4.5 is not gpt-4, o3x is not o3: a wrong price is worse than none
    assert TABLE.price_of(model) is None
    assert TABLE.cost(model, 1000, 1000) is None


def test_cached_input_tokens_are_priced_as_cached():
    # gpt-4o: 2.50 input, 1.25 cached, 10.00 output per million
    full = TABLE.cost("gpt-4o", 1_000_000, 0)
    half_cached = TABLE.cost("gpt-4o", 1_000_000, 0, cached_tokens=500_000)
    assert full == pytest.approx(2.50)
    assert half_cached == pytest.approx(0.5 * 2.50 + 0.5 * 1.25)
    assert TABLE.cost("gpt-4o", 1000, 2000, cached_tokens=1000) == pytest.approx(
        (1000 * 1.25 + 2000 * 10.00) / 1e6
    )


def test_cached_tokens_cost_as_input_without_a_cached_price_and_never_exceed_the_prompt():
    assert TABLE.price_of("o3-pro").cached_input is None
    assert TABLE.cost("o3-pro", 1000, 0, cached_tokens=1000) == TABLE.cost("o3-pro", 1000, 0)
    assert TABLE.cost("gpt-4o", 100, 0, cached_tokens=10**9) == pytest.approx(100 * 1.25 / 1e6)


def test_settings_extend_and_override_the_table():
    settings = Settings(
        _env_file=None,
        openai_prices="llama3.1=0/0, gpt-4o=3/12, Qwen/Qwen2.5-7B-Instruct=0.1/0.2/0.05",
    )
    table = price_table(settings.model_prices)
    assert table.cost("llama3.1:8b", 5000, 5000) == 0.0  # free, not unknown
    assert table.cost("gpt-4o", 1_000_000, 0) == pytest.approx(3.0)
    assert table.price_of("gpt-4o").cached_input is None
    assert table.cost("Qwen/Qwen2.5-7B-Instruct", 1_000_000, 1_000_000, 1_000_000) == (
        pytest.approx(0.05 + 0.2)
    )
    assert table.price_of("o3-mini") == TABLE.price_of("o3-mini")  # the rest stays


@pytest.mark.parametrize("bad", ["llama", "llama=1", "llama=a/b", "=1/2", "x=1/2/3/4", "x=-1/2"])
def test_bad_price_entries_are_named(bad):
    from pydantic import ValidationError

    from app.config import describe_errors

    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, openai_prices=bad)
    (line,) = describe_errors(caught.value)
    assert line.startswith("invalid setting OPENAI_PRICES=") and "model=input/output" in line
