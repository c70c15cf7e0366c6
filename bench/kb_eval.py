"""`make kb-eval DATA=path.json [ENGINE=classical|semantic] [PLOT=path.png] [BASELINE=commit]`:
how good is the engine, and how fast against an older one?

Trains on `train` (+ `oos_train`). The engine calibrates itself on held-out parts of its
training data; the evaluation keeps the threshold data apart from what it reports on: with a
`test` split, the threshold is picked on `val` + `oos_val` and the figures come from `test` +
`oos_test`; without one, `val` + `oos_val` is halved (stratified, fixed seed), the threshold
picked on each half is applied to the other, and the figures pool both halves. A CSV
(`text,label`) without splits is split 80/20, stratified, with a fixed seed. Prints one JSON
object.

Out-of-scope shares: each dataset has its own share of out-of-scope queries (3 % in
CLINC150's val, 18 % in its test). `oos_shares` re-weights the reported queries so that
out-of-scope ones make up 3 %, 10 % and 20 % of the traffic and gives accuracy, out-of-scope
precision and the expected calibration error at each (in-scope accuracy and out-of-scope
recall do not depend on the share). `PLOT` draws the reliability diagram at those shares.

Side by side: `BASELINE` (a commit) is checked out into a temporary git worktree outside
the repository, its engine is trained and timed there (bench/kb_measure.py) on the same
data in the same run and scored by the same code here; `baseline` and `ratios` (new / old)
are printed and the worktree is removed afterwards. Times are wall-clock and CPU (`_cpu_`):
on a shared machine the CPU figures are the steadier ones.

Decision rule, the product's (`Match.answer`): at a threshold, the bot answers with the best
entry when its calibrated confidence reaches the threshold, and refuses otherwise (Chow's
reject option), even where the out-of-scope class is likelier (only below 0.5).
Threshold rule (general, not tuned to a dataset): among thresholds that keep in-scope
accuracy within one point of its best, take the one that refuses the most out-of-scope
queries. `at_default_threshold` gives the figures at 0.5, `ESCALATION_CONFIDENCE_THRESHOLD`'s
default. The expected calibration error is that of the likeliest class's probability,
out-of-scope included.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from bench.kb_measure import measure
from services.knowledge.datasets import OOS_LABELS, load_dataset

OOS = "oos"
SHARES = (0.03, 0.10, 0.20)
TOLERANCE = 0.01  # in-scope accuracy the threshold may give up for out-of-scope recall
ROOT = Path(__file__).resolve().parents[1]


def reliability(
    confidence: np.ndarray, correct: np.ndarray, weights: np.ndarray | None = None, bins: int = 15
) -> list[tuple[float, float, float]]:
    """(mean confidence, accuracy, weight share) per non-empty confidence bin."""
    w = np.ones(len(confidence)) if weights is None else weights
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in itertools.pairwise(edges):
        chosen = (confidence > lo) & (confidence <= hi)
        if chosen.any() and w[chosen].sum() > 0:
            mass = w[chosen]
            out.append(
                (
                    float(np.average(confidence[chosen], weights=mass)),
                    float(np.average(correct[chosen], weights=mass)),
                    float(mass.sum() / w.sum()),
                )
            )
    return out


def ece(
    confidence: np.ndarray, correct: np.ndarray, weights: np.ndarray | None = None, bins: int = 15
) -> float:
    """Expected calibration error (15 equal-width bins), optionally weighted per query."""
    return float(
        sum(
            share * abs(acc - conf)
            for conf, acc, share in reliability(confidence, correct, weights, bins)
        )
    )


def share_weights(truth: np.ndarray, share: float) -> np.ndarray:
    """Per-query weights making out-of-scope queries `share` of the total."""
    oos = truth == OOS
    return np.where(oos, share / max(oos.sum(), 1), (1 - share) / max((~oos).sum(), 1))


def decide(best: np.ndarray, confidence: np.ndarray, threshold: float) -> np.ndarray:
    return np.where(confidence >= threshold, best, OOS)


def scores(
    pred: np.ndarray, truth: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, float | None]:
    w = np.ones(len(truth)) if weights is None else weights
    in_scope = truth != OOS
    out: dict[str, float | None] = {
        "in_scope_accuracy": float((pred[in_scope] == truth[in_scope]).mean())
    }
    if (~in_scope).any():
        refused = pred == OOS
        out["oos_recall"] = float(refused[~in_scope].mean())
        out["oos_precision"] = (
            float(np.average(~in_scope[refused], weights=w[refused])) if refused.any() else None
        )
    else:
        out["oos_recall"] = out["oos_precision"] = None
    out["accuracy"] = float(np.average(pred == truth, weights=w))
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def pick_threshold(best: np.ndarray, confidence: np.ndarray, truth: np.ndarray) -> float:
    grid = np.round(np.arange(0.0, 0.96, 0.01), 2)
    results = [(t, scores(decide(best, confidence, t), truth)) for t in grid]
    top = max(r["in_scope_accuracy"] or 0 for _, r in results)
    allowed = [(t, r) for t, r in results if (r["in_scope_accuracy"] or 0) >= top - TOLERANCE]
    return float(max(allowed, key=lambda tr: (tr[1]["oos_recall"] or 0, -tr[0]))[0])


def normalise(labels: list[str]) -> np.ndarray:
    return np.asarray([OOS if label.lower() in OOS_LABELS else label for label in labels])


def cross_fitted_thresholds(
    best: np.ndarray, confidence: np.ndarray, truth: np.ndarray
) -> tuple[np.ndarray, list[float]]:
    """Each query's threshold, picked on the other half of the split (stratified halves)."""
    halves = train_test_split(np.arange(len(truth)), test_size=0.5, stratify=truth, random_state=0)
    per_query = np.empty(len(truth))
    picked = []
    for pick_on, apply_to in (halves, halves[::-1]):
        t = pick_threshold(best[pick_on], confidence[pick_on], truth[pick_on])
        per_query[apply_to] = t
        picked.append(t)
    return per_query, picked


def plot_reliability(
    path: str, engine: str, confidence: np.ndarray, correct: np.ndarray, truth: np.ndarray
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curve, mass) = plt.subplots(
        2, 1, figsize=(6, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    curve.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    for share in SHARES:
        weights = share_weights(truth, share)
        points = reliability(confidence, correct, weights)
        error = ece(confidence, correct, weights)
        curve.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="o",
            label=f"{share:.0%} out-of-scope (ECE {error:.3f})",
        )
        mass.plot([p[0] for p in points], [p[2] for p in points], marker=".", label=f"{share:.0%}")
    curve.set(ylabel="accuracy", title=f"Reliability of the {engine} engine's confidence")
    curve.legend(loc="upper left")
    mass.set(xlabel="confidence", ylabel="share of queries", xlim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_baseline(commit: str, job: dict[str, object]) -> dict[str, Any]:
    """The engine as it was at `commit`, measured by bench/kb_measure.py in a temporary
    worktree outside the repository (removed afterwards)."""
    place = Path(tempfile.mkdtemp(prefix="kb-eval-baseline-"))
    tree, job_file = place / "tree", place / "job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    git = ["git", "-C", str(ROOT)]
    subprocess.run([*git, "worktree", "add", "--detach", "--quiet", str(tree), commit], check=True)
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "kb_measure.py"), str(job_file)],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"},
            capture_output=True,
            text=True,
            check=True,
        )
        run: dict[str, Any] = json.loads(done.stdout)
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)
        job_file.unlink(missing_ok=True)
        place.rmdir()
    if not run["services"].startswith(str(tree.resolve())):
        raise RuntimeError(f"the baseline ran {run['services']}, not the worktree's code")
    return run


def figures(
    run: dict[str, Any], truth: np.ndarray, val_truth: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Quality and speed of one measured engine; also its top confidence and correctness.

    With `val_truth`, the run's predictions end with the val queries, on which the
    threshold is picked; without, each half of the reported queries gets the threshold
    picked on the other half."""
    n = len(truth)
    best = np.asarray([OOS if b is None else b for b in run["best"]])
    conf = np.asarray(run["confidence"], dtype=float)
    top = np.asarray(run["top_confidence"], dtype=float)
    r_best, r_conf, r_top = best[:n], conf[:n], top[:n]
    top_label = np.where(r_conf >= r_top - 1e-12, r_best, OOS)  # the argmax, OOS included
    correct = top_label == truth
    out: dict[str, Any] = {}
    has_oos = (truth == OOS).any() or (val_truth is not None and (val_truth == OOS).any())
    if has_oos:
        if val_truth is not None:
            threshold = pick_threshold(best[n:], conf[n:], val_truth)
            per_query, picked = np.full(n, threshold), [threshold]
        else:
            per_query, picked = cross_fitted_thresholds(r_best, r_conf, truth)
        pred = np.where(r_conf >= per_query, r_best, OOS)
        out.update(scores(pred, truth))
        out["threshold"] = round(float(np.mean(picked)), 3)
        default = scores(decide(r_best, r_conf, 0.5), truth)
        out["at_default_threshold"] = {
            k: default[k] for k in ("in_scope_accuracy", "oos_recall", "oos_precision")
        }
        out["oos_share"] = round(float((truth == OOS).mean()), 4)
        out["oos_shares"] = {
            f"{share:.2f}": {
                k: v
                for k, v in scores(pred, truth, share_weights(truth, share)).items()
                if k in ("accuracy", "oos_precision")
            }
            | {
                "expected_calibration_error": round(
                    ece(r_top, correct, share_weights(truth, share)), 4
                )
            }
            for share in SHARES
        }
    else:
        out["accuracy"] = round(float((r_best == truth).mean()), 4)
    out["expected_calibration_error"] = round(ece(r_top, correct), 4)
    out["train_seconds"] = round(run["train_seconds"], 2)
    out["train_cpu_seconds"] = round(run["train_cpu_seconds"], 2)
    for name, key in (("predict", "latency_ms"), ("predict_cpu", "latency_cpu_ms")):
        out[f"{name}_p50_ms"] = round(float(np.percentile(run[key], 50)), 3)
        out[f"{name}_p99_ms"] = round(float(np.percentile(run[key], 99)), 3)
    out["peak_rss_mb"] = round(run["peak_rss_mb"], 1)
    return out, r_top, correct


RATIOS = (
    "train_seconds",
    "train_cpu_seconds",
    "predict_p50_ms",
    "predict_cpu_p50_ms",
    "predict_p99_ms",
    "peak_rss_mb",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--engine", default="classical", choices=["classical", "semantic"])
    parser.add_argument("--plot", default="", help="write the reliability diagram (PNG) here")
    parser.add_argument(
        "--baseline", default="", help="a commit whose engine is measured on the same data"
    )
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
    truth = normalise([label for _, label in report_on])
    val_truth = normalise([label for _, label in val]) if test else None
    job = {
        "train": train,
        "texts": [t for t, _ in report_on] + ([t for t, _ in val] if test else []),
        "engine": args.engine,
    }

    old = run_baseline(args.baseline, job) if args.baseline else None
    new = measure(train, job["texts"], args.engine)  # type: ignore[arg-type]

    result: dict[str, Any] = {
        "engine": args.engine,
        "data": args.data,
        "reported_on": "test" if test else "val",
        "threshold_chosen_on": "val" if test else "the other half of val",
        "examples": len(report_on),
    }
    measured, r_top, correct = figures(new, truth, val_truth)
    result.update(measured)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if old is not None:
        result["baseline"] = {"commit": args.baseline} | figures(old, truth, val_truth)[0]
        result["ratios"] = {
            key: round(result[key] / result["baseline"][key], 3)
            for key in RATIOS
            if result["baseline"].get(key)
        }
    if args.plot and "oos_shares" in result:
        plot_reliability(args.plot, args.engine, r_top, correct, truth)
        result["plot"] = args.plot
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
