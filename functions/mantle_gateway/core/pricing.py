"""Prices in USD per 1M tokens, and the cost of one usage.

The bundled prices live in one data file, `prices.json` beside this module, with their sources,
the date they were read and, per model, the regions whose price differs. `PriceTable` reads it
when the gateway is built (never at import) and keeps the price of MANTLE_REGION; PRICES_JSON
overrides or adds models, no code change. Reasoning tokens are output tokens (they are already
inside `output_tokens`). Cached input tokens are charged at the cached rate where the model has
one, else at the input rate; tokens written to a prompt cache (Anthropic Messages) at the
cache-write rate where the model has one, else at the input rate. Costs are exact decimals
rounded to 1e-10 USD, so a month's usage items add up to the spend counter to the cent and beyond.
A model with no price has no cost: `cost` says None, and admission refuses it to keys that have a
budget (`core/admission.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Any

from mantle_gateway.usage import TokenCounts

_MILLION = Decimal(1_000_000)
MAX_OUTPUT_TOKENS = 10_000_000
"""No model writes more in one answer; a larger `max_tokens` is reserved as this many."""
_EXACT = Context(prec=60)
COST_QUANTUM = Decimal("1e-10")
PRICES_FILE = "prices.json"
DEFAULT_REGION = "us-east-1"
"""The region whose price is each model's own; other regions list only where they differ."""


@dataclass(frozen=True, slots=True)
class Price:
    input: Decimal
    output: Decimal
    cached: Decimal | None = None
    cache_write: Decimal | None = None


def bundled_prices(region: str = DEFAULT_REGION) -> dict[str, Price]:
    """Every model's price in `region`, read from the bundled data file."""
    from importlib import resources  # at build time only: the handler's import stays light

    text = resources.files(__package__).joinpath(PRICES_FILE).read_text(encoding="utf-8")
    models: Mapping[str, Mapping[str, Any]] = json.loads(text, parse_float=Decimal)["models"]
    return {
        model: _price(entry.get("regions", {}).get(region, entry))
        for model, entry in models.items()
    }


def _price(entry: Mapping[str, Any]) -> Price:
    def rate(name: str) -> Decimal | None:
        value = entry.get(name)
        return Decimal(value) if value is not None else None

    inp, out = rate("input"), rate("output")
    if inp is None or out is None:
        raise ValueError(f"{PRICES_FILE}: a price without input or output: {dict(entry)}")
    return Price(inp, out, rate("cached"), rate("cache_write"))


class PriceTable:
    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, float]] | None = None,
        *,
        region: str = DEFAULT_REGION,
    ) -> None:
        table = bundled_prices(region)
        for model, prices in (overrides or {}).items():
            base = table.get(model, Price(Decimal(0), Decimal(0)))
            table[model] = Price(
                _dec(prices.get("input"), base.input),
                _dec(prices.get("output"), base.output),
                _dec(prices.get("cached"), base.cached) if "cached" in prices else base.cached,
                _dec(prices.get("cache_write"), base.cache_write)
                if "cache_write" in prices
                else base.cache_write,
            )
        self._table = table

    def cost(self, model: str, tokens: TokenCounts) -> Decimal | None:
        """USD for these tokens; None when the model has no price (the caller decides)."""
        price = self._table.get(model)
        if price is None:
            return None
        cached = min(tokens.cached, tokens.input)
        written = min(tokens.cache_write, tokens.input - cached)
        cached_rate = price.cached if price.cached is not None else price.input
        write_rate = price.cache_write if price.cache_write is not None else price.input
        with localcontext(_EXACT):
            total = (
                (tokens.input - cached - written) * price.input
                + cached * cached_rate
                + written * write_rate
                + tokens.output * price.output
            ) / _MILLION
            return total.quantize(COST_QUANTUM)


def worst_case_tokens(body: dict[str, object], body_bytes: int, default_output: int) -> TokenCounts:
    """What a request may cost at most, for the budget reservation: input estimated at 4 bytes
    per token of the body, output at the request's own cap (or the deployment's default)."""
    cap = next(
        (
            value
            for name in ("max_completion_tokens", "max_tokens", "max_output_tokens")
            if isinstance(value := body.get(name), int) and not isinstance(value, bool)
        ),
        default_output,
    )
    return TokenCounts(input=max(1, body_bytes // 4), output=min(max(0, cap), MAX_OUTPUT_TOKENS))


def _dec(value: float | None, default: Decimal | None) -> Decimal:
    if value is None:
        return default if default is not None else Decimal(0)
    return Decimal(repr(value))
