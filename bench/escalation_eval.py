"""The escalation rules on a labelled set: per-rule precision and recall, false escalations.

    python -m bench.escalation_eval [--data tests/data/escalation_set.csv] [--half all|dev|held]

Messages (text,expected_rule with requested, frustration, keyword or none) go through the
policy with the default settings and a confident ordinary answer, so only the rules that
read the customer's message decide. The set was written before the rules were tuned, and
only the even rows ("dev") were looked at while tuning: the odd rows ("held") are the
honest figures. Short conversations (tests/data/repeated_failure.yaml) measure
repeated_failure. No timing here and no network: it runs in about a second.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.config import Settings
from services.escalation import EscalationPolicy
from services.responders.base import Reply

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
RULES = ("requested", "frustration", "keyword")
ANSWER = Reply("An ordinary answer from the knowledge base.", 0.9, "local")


@dataclass
class Figures:
    rows: int
    tp: Counter[str]
    fp: Counter[str]
    fn: Counter[str]
    routine: int
    false_escalations: int
    misses: list[tuple[str, str, list[str]]]

    def precision(self, rule: str) -> float:
        hits = self.tp[rule] + self.fp[rule]
        return self.tp[rule] / hits if hits else 1.0

    def recall(self, rule: str) -> float:
        wanted = self.tp[rule] + self.fn[rule]
        return self.tp[rule] / wanted if wanted else 1.0

    @property
    def false_rate(self) -> float:
        return self.false_escalations / self.routine if self.routine else 0.0


def load_set(path: Path, half: str = "all") -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [(r["text"], r["expected_rule"]) for r in csv.DictReader(f)]
    if half == "dev":
        return rows[0::2]
    if half == "held":
        return rows[1::2]
    return rows


def evaluate(policy: EscalationPolicy, rows: list[tuple[str, str]]) -> Figures:
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    routine = false_escalations = 0
    misses = []
    for text, expected in rows:
        fired = {r.rule for r in policy.evaluate(text, ANSWER)}
        for rule in RULES:
            if rule in fired and rule == expected:
                tp[rule] += 1
            elif rule in fired:
                fp[rule] += 1
            elif rule == expected:
                fn[rule] += 1
        if expected == "none":
            routine += 1
            false_escalations += bool(fired)
        if fired != ({expected} - {"none"}):
            misses.append((text, expected, sorted(fired)))
    return Figures(len(rows), tp, fp, fn, routine, false_escalations, misses)


def conversations(policy: EscalationPolicy, path: Path) -> tuple[int, int, list[str]]:
    """(right, total, names of the wrong ones) for the repeated_failure conversations."""
    cases: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    wrong = []
    for case in cases:
        previous: list[dict[str, Any]] = []
        fired = False
        for turn in case["turns"]:
            reply = Reply(turn.get("answer", "An answer."), float(turn["confidence"]), "local")
            fired = any(
                r.rule == "repeated_failure"
                for r in policy.failure_reasons(turn["user"], reply, previous)
            )
            previous += [
                {"role": "user", "content": turn["user"]},
                {"role": "assistant", "content": reply.text, "confidence": reply.confidence},
            ]
        if fired != (case["expected"] == "repeated_failure"):
            wrong.append(case["name"])
    return len(cases) - len(wrong), len(cases), wrong


def report(title: str, figures: Figures) -> None:
    print(f"{title}: {figures.rows} messages, {figures.routine} routine")
    print(f"  {'rule':<14}{'precision':>10}{'recall':>8}{'support':>9}")
    for rule in RULES:
        support = figures.tp[rule] + figures.fn[rule]
        print(
            f"  {rule:<14}{figures.precision(rule):>10.3f}{figures.recall(rule):>8.3f}{support:>9}"
        )
    print(
        f"  false escalations on routine messages: {figures.false_escalations}/"
        f"{figures.routine} = {figures.false_rate:.1%}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA / "escalation_set.csv")
    parser.add_argument("--conversations", type=Path, default=DATA / "repeated_failure.yaml")
    parser.add_argument("--half", choices=("all", "dev", "held"), default=None)
    parser.add_argument("--misses", action="store_true", help="list the wrong messages")
    args = parser.parse_args(argv)
    policy = EscalationPolicy.from_settings(Settings(_env_file=None))
    halves = (args.half,) if args.half else ("held", "dev", "all")
    titles = {"held": "held-out half (odd rows)", "dev": "tuning half (even rows)", "all": "all"}
    for half in halves:
        figures = evaluate(policy, load_set(args.data, half))
        report(titles[half], figures)
        if args.misses:
            for text, expected, fired in figures.misses:
                print(f"    expected {expected:<12} got {','.join(fired) or 'none':<22} {text}")
    right, total, wrong = conversations(policy, args.conversations)
    print(
        f"repeated_failure conversations: {right}/{total} right"
        + (f"; wrong: {wrong}" if wrong else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
