"""The pricing table: US dollars per million tokens (input, output, cached input) by model.

Estimates for /usage and CHAT_DAILY_COST_USD. The most specific entry wins: a model's own entry,
else the longest entry it extends with `-`, `:` or `@` (a dated snapshot like gpt-4o-2024-08-06,
an Ollama tag like llama3.1:8b). So o3-mini is never billed as o3, and gpt-4.5 is not gpt-4.
Unknown models have no price: their tokens are shown without a cost, never as free.
OPENAI_PRICES adds or replaces entries (local or new models) without a code change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

SEPARATORS = ("-", ":", "@")


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cached_input: float | None = None
    """None: the provider has no cached-input price for this model, so cached tokens cost as
    input."""


# Edit here when prices change (https://openai.com/api/pricing).
PRICES: dict[str, Price] = {
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "gpt-4": Price(30.00, 60.00),
    "gpt-4-32k": Price(60.00, 120.00),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-2024-05-13": Price(5.00, 15.00),
    "chatgpt-4o-latest": Price(5.00, 15.00),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "gpt-5-nano": Price(0.05, 0.40, 0.005),
    "gpt-5-pro": Price(15.00, 120.00),
    "gpt-5.1": Price(1.25, 10.00, 0.125),
    "o1": Price(15.00, 60.00, 7.50),
    "o1-mini": Price(1.10, 4.40, 0.55),
    "o1-pro": Price(150.00, 600.00),
    "o3": Price(2.00, 8.00, 0.50),
    "o3-mini": Price(1.10, 4.40, 0.55),
    "o3-pro": Price(20.00, 80.00),
    "o3-deep-research": Price(10.00, 40.00, 2.50),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "o4-mini-deep-research": Price(2.00, 8.00, 0.50),
}


class PriceTable:
    def __init__(self, extra: Mapping[str, Price] | None = None) -> None:
        self.entries: dict[str, Price] = {**PRICES, **(extra or {})}

    def entry_for(self, model: str) -> str | None:
        """The name of the entry that prices `model`, or None."""
        if model in self.entries:
            return model
        extended = [
            name
            for name in self.entries
            if model.startswith(name) and model[len(name) : len(name) + 1] in SEPARATORS
        ]
        return max(extended, key=len) if extended else None

    def price_of(self, model: str) -> Price | None:
        name = self.entry_for(model)
        return None if name is None else self.entries[name]

    def cost(
        self, model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
    ) -> float | None:
        """Dollars for one request; `prompt_tokens` includes the cached ones (as APIs report)."""
        price = self.price_of(model)
        if price is None:
            return None
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_price = price.input if price.cached_input is None else price.cached_input
        total = (
            (prompt_tokens - cached) * price.input
            + cached * cached_price
            + completion_tokens * price.output
        )
        return total / 1_000_000


def price_table(extra: Mapping[str, tuple[float, float, float | None]]) -> PriceTable:
    """The table with OPENAI_PRICES' entries (as Settings parse them) added."""
    return PriceTable({name: Price(*values) for name, values in extra.items()})
