"""`make kb-eval DATA=path.json [ENGINE=classical|semantic]`: how good is the engine?

Trains on `train` (+ `oos_train`), picks the out-of-scope threshold on `val` + `oos_val`,
reports on `test` + `oos_test` (or on `val` when there is no test split). A CSV
(`text,label`) without splits is split 80/20, stratified, with a fixed seed. Prints one
JSON object.

Threshold rule (general, not tuned to a dataset): among thresholds that keep in-scope
accuracy within one point of its best, take the one that refuses the most out-of-scope
queries.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import time

import numpy as np
from sklearn.model_selection import train_test_split

from services.knowledge.datasets import OOS_LABELS, knowledge_from_examples, load_dataset
from services.knowledge.engines import train_engine

OOS = "oos"


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        chosen = (confidence > lo) & (confidence <= hi)
        if chosen.any():
            total += chosen.mean() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(total)


def decide(best: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    return np.where(confidence >= threshold, best, OOS)


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    in_scope = truth != OOS
    out: dict[str, float | None] = {
        "in_scope_accuracy": float((pred[in_scope] == truth[in_scope]).mean())
    }
    if (~in_scope).any():
        refused = pred == OOS
        out["oos_recall"] = float(refused[~in_scope].mean())
        out["oos_precision"] = float((~in_scope)[refused].mean()) if refused.any() else None
    else:
        out["oos_recall"] = out["oos_precision"] = None
    out["accuracy"] = float((pred == truth).mean())
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def pick_threshold(best: np.ndarray, confidence: np.ndarray, truth: np.ndarray) -> float:
    grid = np.round(np.arange(0.0, 0.96, 0.01), 2)
    results = [(t, scores(decide(best, confidence, t), truth)) for t in grid]
    top = max(r["in_scope_accuracy"] for _, r in results)
    allowed = [(t, r) for t, r in results if r["in_scope_accuracy"] >= top - 0.01]
    return float(max(allowed, key=lambda tr: (tr[1]["oos_recall"] or 0, -tr[0]))[0])


def predict(engine, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[float]]:
    """Best in-scope label and its confidence, the top label overall and its confidence."""
    best, confidence, top_conf, latencies = [], [], [], []
    for text in texts:
        started = time.perf_counter()
        match = engine.match(text, 1)
        latencies.append((time.perf_counter() - started) * 1000)
        best.append(match.entry.id if match.entry is not None else OOS)
        confidence.append(match.confidence if match.entry is not None else 0.0)
        top_conf.append(match.top_confidence)
    return np.asarray(best), np.asarray(confidence), np.asarray(top_conf), latencies


def normalise(labels: list[str]) -> np.ndarray:
    return np.asarray([OOS if label.lower() in OOS_LABELS else label for label in labels])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--engine", default="classical", choices=["classical", "semantic"])
    args = parser.parse_args()

    dataset = load_dataset(args.data)
    train = dataset.split("train", "oos_train")
    val = dataset.split("val", "oos_val")
    test = dataset.split("test", "oos_test")
    if not val:  # a flat CSV: hold out a stratified fifth
        texts, labels = zip(*train, strict=True)
        a, b = train_test_split(
            np.arange(len(texts)), test_size=0.2, stratify=labels, random_state=0
        )
        train, val = [train[i] for i in a], [train[i] for i in b]
    report_on = test or val

    started = time.perf_counter()
    engine = train_engine(knowledge_from_examples(train, dataset.answers), args.engine)
    train_seconds = time.perf_counter() - started

    has_oos = any(label.lower() in OOS_LABELS for _, label in val + report_on)
    v_best, v_conf, _, _ = predict(engine, [t for t, _ in val])
    threshold = (
        pick_threshold(v_best, v_conf, normalise([label for _, label in val])) if has_oos else 0.0
    )
    r_best, r_conf, r_top, latencies = predict(engine, [t for t, _ in report_on])
    truth = normalise([label for _, label in report_on])
    top_label = np.where(r_conf >= r_top - 1e-12, r_best, OOS)  # the argmax class, OOS included

    result: dict[str, object] = {
        "engine": args.engine,
        "data": args.data,
        "reported_on": "test" if test else "val",
        "examples": len(report_on),
    }
    if has_oos:
        result.update(scores(decide(r_best, r_conf, threshold), truth))
        result["threshold"] = threshold
        default = scores(decide(r_best, r_conf, 0.5), truth)
        result["at_default_threshold"] = {
            k: default[k] for k in ("in_scope_accuracy", "oos_recall", "oos_precision")
        }
    else:
        result["accuracy"] = round(float((r_best == truth).mean()), 4)
    result["expected_calibration_error"] = round(ece(r_top, top_label == truth), 4)
    result["train_seconds"] = round(train_seconds, 2)
    result["predict_p50_ms"] = round(float(np.percentile(latencies, 50)), 3)
    result["predict_p99_ms"] = round(float(np.percentile(latencies, 99)), 3)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
