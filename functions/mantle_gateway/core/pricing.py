"""Prices in USD per 1M tokens, and the cost of one usage.

Bundled defaults come from reference/mantle-facts.md §6.2 (us-east-1, on-demand, standard tier);
a deployment overrides or adds models with PRICES_JSON, no code change. Reasoning tokens are
output tokens (they are already inside `output_tokens`). Cached input tokens are charged at the
cached rate where the model has one, else at the input rate; tokens written to a prompt cache
(Anthropic Messages) at the cache-write rate where the model has one, else at the input rate.
Costs are exact decimals rounded to 1e-10 USD, so a month's usage items add up to the spend
counter to the cent and beyond.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext

from mantle_gateway.usage import TokenCounts

_MILLION = Decimal(1_000_000)
MAX_OUTPUT_TOKENS = 10_000_000
"""No model writes more in one answer; a larger `max_tokens` is reserved as this many."""
_EXACT = Context(prec=60)
COST_QUANTUM = Decimal("1e-10")


@dataclass(frozen=True, slots=True)
class Price:
    input: Decimal
    output: Decimal
    cached: Decimal | None = None
    cache_write: Decimal | None = None


def _p(inp: str, out: str, cached: str | None = None) -> Price:
    return Price(Decimal(inp), Decimal(out), Decimal(cached) if cached else None)


BUNDLED: Mapping[str, Price] = {
    "openai.gpt-oss-120b": _p("0.15", "0.60"),
    "openai.gpt-oss-20b": _p("0.07", "0.30"),
    "openai.gpt-oss-safeguard-120b": _p("0.15", "0.60"),
    "openai.gpt-oss-safeguard-20b": _p("0.07", "0.20"),
    "openai.gpt-5.4": _p("2.75", "16.50", "0.275"),
    "openai.gpt-5.5": _p("5.50", "33.00", "0.55"),
    "openai.gpt-5.6-sol": _p("5.50", "33.00", "0.55"),
}


class PriceTable:
    def __init__(self, overrides: Mapping[str, Mapping[str, float]] | None = None) -> None:
        table = dict(BUNDLED)
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
        """USD for these tokens; None when the model has no price (the caller warns)."""
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
