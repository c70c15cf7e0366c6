"""The figures the Analytics API serves, computed from summed counter fields (a day's, an
hour's, or a range's): every rate names its denominator, every percentile its count."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from services.analytics.episodes import OUTCOMES
from services.analytics.histogram import LATENCY_BOUNDS, WAIT_BOUNDS, percentiles

Prices = Mapping[str, tuple[float, float]]


def rate(numerator: int, denominator: int, name: str) -> dict[str, Any]:
    return {
        "value": round(numerator / denominator, 4) if denominator else None,
        "numerator": numerator,
        "denominator": denominator,
        "denominatorName": name,
    }


def outcomes(f: Mapping[str, int]) -> dict[str, int]:
    counts = {name: max(0, int(f.get(f"out:{name}", 0))) for name in OUTCOMES}
    settled = sum(counts.values())
    return {
        "botResolved": counts["bot_resolved_confirmed"] + counts["bot_resolved_assumed"],
        "botResolvedConfirmed": counts["bot_resolved_confirmed"],
        "botResolvedAssumed": counts["bot_resolved_assumed"],
        "agentResolved": counts["agent_resolved"],
        "abandoned": counts["abandoned"],
        "reopened": counts["reopened"],
        "pending": max(0, int(f.get("episodes", 0)) - settled),
    }


def by_prefix(f: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in sorted(f.items()) if k.startswith(prefix) and v}


def csat(f: Mapping[str, int]) -> dict[str, Any]:
    dist = {str(r): int(f.get(f"csat:{r}", 0)) for r in range(1, 6)}
    n = sum(dist.values())
    total = sum(int(r) * c for r, c in dist.items())
    return {
        "count": n,
        "average": round(total / n, 3) if n else None,
        "distribution": dist,
        "satisfied": rate(dist["4"] + dist["5"], n, "ratings"),
    }


def providers(f: Mapping[str, int], prices: Prices, currency: str) -> list[dict[str, Any]]:
    names = {k.split("|")[1] for k in f if k.startswith(("p|", "t|"))}
    names |= {k[len("h:lat|") :].rsplit(":", 1)[0] for k in f if k.startswith("h:lat|")}
    out = []
    for name in sorted(names):
        tokens = Counter[str]()
        cost = 0.0
        for key, value in f.items():
            parts = key.split("|")
            if parts[0] == "t" and len(parts) == 4 and parts[1] == name:
                model, kind = parts[2], parts[3]
                tokens[kind] += value
                price = prices.get(model)
                if price:
                    cost += value * (price[0] if kind == "prompt" else price[1]) / 1_000_000
        out.append(
            {
                "provider": name,
                "replies": int(f.get(f"p|{name}|replies", 0)),
                "failures": int(f.get(f"p|{name}|failures", 0)),
                "failovers": int(f.get(f"p|{name}|failovers", 0)),
                "tokens": {
                    "prompt": tokens["prompt"],
                    "completion": tokens["completion"],
                    "total": tokens["prompt"] + tokens["completion"],
                },
                "estimatedCost": {"amount": round(cost, 6), "currency": currency},
                "latency": percentiles(f, f"lat|{name}", LATENCY_BOUNDS, "milliseconds"),
            }
        )
    return out


def summary(f: Mapping[str, int], distinct: int, prices: Prices, currency: str) -> dict[str, Any]:
    episodes = int(f.get("episodes", 0))
    out = outcomes(f)
    messages = {k: int(f.get(f"msg:{k}", 0)) for k in ("customer", "bot", "agent")}
    return {
        "episodes": {"count": episodes},
        "messages": {**messages, "total": sum(messages.values())},
        "distinctCustomers": distinct,
        "outcomes": out,
        "outcomeRates": {k: rate(v, episodes, "episodes") for k, v in out.items()},
        "containment": rate(out["botResolved"], episodes, "episodes"),
        "escalation": {
            "rate": rate(int(f.get("escalated", 0)), episodes, "episodes"),
            "byReason": by_prefix(f, "esc:"),
        },
        "timeToClaim": percentiles(f, "claim", WAIT_BOUNDS, "seconds"),
        "agentFirstResponse": percentiles(f, "first", WAIT_BOUNDS, "seconds"),
        "handleTime": percentiles(f, "handle", WAIT_BOUNDS, "seconds"),
        "csat": csat(f),
        "providers": providers(f, prices, currency),
        "webhooks": {
            "delivered": int(f.get("wh:delivered", 0)),
            "failed": int(f.get("wh:failed", 0)),
        },
        "suggestionsUsed": int(f.get("assist:used", 0)),
    }


# metric -> (unit, how to read one bucket's fields into a point)
def point(metric: str, f: Mapping[str, int], prices: Prices, currency: str) -> dict[str, Any]:
    episodes = int(f.get("episodes", 0))
    outs = outcomes(f)
    simple = {
        "episodes": episodes,
        "messages": sum(int(f.get(f"msg:{k}", 0)) for k in ("customer", "bot", "agent")),
        "bot_resolved": outs["botResolved"],
        "agent_resolved": outs["agentResolved"],
        "abandoned": outs["abandoned"],
        "reopened": outs["reopened"],
    }
    if metric in simple:
        return {"value": simple[metric]}
    if metric == "containment":
        r = rate(outs["botResolved"], episodes, "episodes")
        return {"value": r["value"], "numerator": r["numerator"], "denominator": episodes}
    if metric == "escalation_rate":
        r = rate(int(f.get("escalated", 0)), episodes, "episodes")
        return {"value": r["value"], "numerator": r["numerator"], "denominator": episodes}
    if metric == "escalations":
        return {"value": int(f.get("escalated", 0)), "breakdown": by_prefix(f, "esc:")}
    if metric == "csat_average":
        c = csat(f)
        return {"value": c["average"], "denominator": c["count"]}
    if metric == "webhook_deliveries":
        b = {"delivered": int(f.get("wh:delivered", 0)), "failed": int(f.get("wh:failed", 0))}
        return {"value": sum(b.values()), "breakdown": b}
    for name, hist in (("time_to_claim", "claim"), ("first_response", "first")):
        for q in ("p50", "p90"):
            if metric == f"{name}_{q}":
                p = percentiles(f, hist, WAIT_BOUNDS, "seconds")
                return {"value": p[q], "denominator": p["count"]}
    if metric == "handle_time_p50":
        p = percentiles(f, "handle", WAIT_BOUNDS, "seconds")
        return {"value": p["p50"], "denominator": p["count"]}
    rows = providers(f, prices, currency)
    if metric == "responder_latency_p95":
        n = sum(r["latency"]["count"] for r in rows)
        merged: Counter[str] = Counter()
        for key, value in f.items():
            if key.startswith("h:lat|"):
                merged["h:all:" + key.rsplit(":", 1)[1]] += value
        p = percentiles(merged, "all", LATENCY_BOUNDS, "milliseconds")
        breakdown = {r["provider"]: r["latency"]["p95"] for r in rows if r["latency"]["p95"]}
        return {"value": p["p95"], "denominator": n, "breakdown": breakdown}
    picks: dict[str, Callable[[dict[str, Any]], Any]] = {
        "replies": lambda r: r["replies"],
        "failures": lambda r: r["failures"],
        "failovers": lambda r: r["failovers"],
        "tokens": lambda r: r["tokens"]["total"],
        "cost": lambda r: r["estimatedCost"]["amount"],
    }
    pick = picks[metric]
    breakdown = {r["provider"]: pick(r) for r in rows}
    total = sum(breakdown.values())
    return {"value": round(total, 6) if metric == "cost" else total, "breakdown": breakdown}


UNITS = {
    "containment": "ratio",
    "escalation_rate": "ratio",
    "csat_average": "rating",
    "time_to_claim_p50": "seconds",
    "time_to_claim_p90": "seconds",
    "first_response_p50": "seconds",
    "first_response_p90": "seconds",
    "handle_time_p50": "seconds",
    "responder_latency_p95": "milliseconds",
    "tokens": "tokens",
    "cost": "currency",
}
DENOMINATORS = {"containment": "episodes", "escalation_rate": "episodes"}


# -- CSV -------------------------------------------------------------------------------
def _cell(value: Any) -> Any:
    """Cells that a spreadsheet would read as a formula are quoted with a leading '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def to_csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def summary_rows(body: Mapping[str, Any]) -> list[list[Any]]:
    """metric,value,numerator,denominator rows: nested members flattened with dots."""
    rows: list[list[Any]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and "denominatorName" in value:
            rows.append([prefix, value["value"], value["numerator"], value["denominator"]])
        elif isinstance(value, dict) and "p50" in value and "count" in value:
            for k in ("mean", "p50", "p90", "p95", "p99"):
                rows.append([f"{prefix}.{k}", value[k], "", value["count"]])
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, list):
            for item in value:
                walk(f"{prefix}.{item.get('provider', '')}", dict(item, provider=None))
        elif value is not None or prefix.endswith(("average", "p50")):
            rows.append([prefix, value, "", ""])

    walk("", {k: v for k, v in body.items() if k not in ("from", "to", "timezone")})
    return rows
