"""The engines on small fixed sets: right answers, out-of-scope refused, calibrated order."""

import json
import subprocess
import sys

import numpy as np
import pytest

from services.knowledge.classical import (
    BORROW_RATIO,
    ClassicalEngine,
    Features,
    borrowed_out_of_scope,
    class_groups,
    fit_svm,
    general_out_of_scope,
    merge_svms,
)
from services.knowledge.datasets import knowledge_from_examples, load_dataset
from services.knowledge.formats import load_knowledge
from services.knowledge.model import KnowledgeBase
from tests.knowledge.conftest import CLINC


@pytest.fixture(scope="module")
def demo():
    return ClassicalEngine.train(load_knowledge("services/knowledge/demo/shop.yaml"))


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("How long does delivery usually take?", "shipping_time"),
        ("i forgot my password", "reset_password"),
        ("Can I send back shoes that don't fit?", "return_policy"),
        ("do you deliver to canada", "international_shipping"),
        ("my parcel never showed up", "missing_package"),
    ],
)
def test_routine_questions_get_the_right_entry_with_confidence(demo, question, intent):
    match = demo.match(question)
    assert match.entry is not None and match.entry.id == intent
    assert match.confidence >= 0.5
    assert match.hits[0].entry.id == intent and len(match.hits) == 3


@pytest.mark.parametrize(
    "question", ["who won the world cup in 1998", "explain quantum entanglement", "asdfgh qwerty"]
)
def test_out_of_scope_questions_are_refused(demo, question):
    match = demo.match(question)
    assert match.entry is None or match.confidence < 0.5


def test_confidence_orders_clear_over_vague_questions(demo):
    clear = demo.match("How do I reset my password?").confidence
    vague = demo.match("password maybe shipping or something").confidence
    assert clear > vague


def test_calibrated_on_held_out_data(clinc_slice):
    data = load_dataset(clinc_slice)
    engine = ClassicalEngine.train(knowledge_from_examples(data.split("train", "oos_train")))
    val = data.split("val")
    right = [
        engine.match(text).entry is not None and engine.match(text).entry.id == label
        for text, label in val
    ]
    confidence = [engine.match(text).top_confidence for text, _ in val]
    accuracy = sum(right) / len(right)
    mean_confidence = sum(confidence) / len(confidence)
    assert accuracy > 0.9
    assert abs(mean_confidence - accuracy) < 0.08  # neither over- nor under-confident


def test_svms_fitted_in_two_halves_of_the_classes_are_the_one_fit(clinc_slice):
    data = load_dataset(clinc_slice)
    texts, labels = map(list, zip(*data.split("train", "oos_train"), strict=True))
    y = np.asarray(labels)
    features = Features()
    matrix = features.fit(texts)
    whole = fit_svm(matrix, y)
    groups = class_groups(y)
    assert len(groups) == 2 and sorted(np.concatenate(groups)) == sorted(set(labels))
    halves = merge_svms([fit_svm(matrix, y, group=g) for g in groups])
    assert list(halves[0]) == list(whole[0])  # the same classes in the same order
    val = features([text for text, _ in data.split("val", "oos_val")])
    scores = [np.asarray(val @ w.T) + b for _, w, b in (whole, halves)]
    assert (scores[0].argmax(axis=1) == scores[1].argmax(axis=1)).mean() > 0.99
    assert np.abs(scores[0] - scores[1]).max() < 0.02  # liblinear's tolerance (0.003 measured)


FIGURES = (
    "in_scope_accuracy",
    "oos_recall",
    "oos_precision",
    "accuracy",
    "threshold",
    "expected_calibration_error",
    "train_seconds",
    "train_cpu_seconds",
    "predict_p50_ms",
    "predict_p99_ms",
    "predict_cpu_p50_ms",
    "predict_cpu_p99_ms",
    "peak_rss_mb",
)
BASELINE = "7934f6c"  # the engine before issue 14, timed beside today's


def test_the_eval_command_prints_the_documented_figures(clinc_slice, tmp_path):
    """Scripts read these keys: they stay. The baseline runs from a temporary worktree."""
    plot = tmp_path / "reliability.png"
    has_baseline = (
        subprocess.run(["git", "cat-file", "-e", f"{BASELINE}^{{commit}}"], check=False).returncode
        == 0
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.kb_eval", "--data", str(clinc_slice), "--plot", str(plot)]
        + (["--baseline", BASELINE] if has_baseline else []),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout)
    for key in FIGURES:
        assert key in report, key
    assert set(report["at_default_threshold"]) == {
        "in_scope_accuracy",
        "oos_recall",
        "oos_precision",
    }
    assert set(report["oos_shares"]) == {"0.03", "0.10", "0.20"}
    for figures in report["oos_shares"].values():
        assert set(figures) == {"accuracy", "oos_precision", "expected_calibration_error"}
    assert report["in_scope_accuracy"] > 0.85 and report["oos_recall"] > 0.3
    assert report["reported_on"] == "val"
    assert report["threshold_chosen_on"] == "the other half of val"
    assert plot.read_bytes().startswith(b"\x89PNG") and report["plot"] == str(plot)
    if has_baseline:
        assert report["baseline"]["commit"] == BASELINE
        assert all(key in report["baseline"] for key in FIGURES)
        assert set(report["ratios"]) == {
            "train_seconds",
            "train_cpu_seconds",
            "predict_p50_ms",
            "predict_cpu_p50_ms",
            "predict_p99_ms",
            "peak_rss_mb",
        }
        # the worktree is gone
        listed = subprocess.run(
            ["git", "worktree", "list"], capture_output=True, text=True, check=True
        ).stdout
        assert "kb-eval-baseline-" not in listed


def test_the_eval_command_reports_accuracy_alone_without_out_of_scope_data(tmp_path):
    rows = [
        ("where is my parcel", "track"),
        ("track my order", "track"),
        ("where's my package", "track"),
        ("order status please", "track"),
        ("has it shipped", "track"),
        ("refund me", "refund"),
        ("i want my money back", "refund"),
        ("money back please", "refund"),
        ("get a refund", "refund"),
        ("how do refunds work", "refund"),
    ]
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\n" + "\n".join(f"{text},{label}" for text, label in rows) + "\n")
    report = json.loads(
        subprocess.run(
            [sys.executable, "-m", "bench.kb_eval", "--data", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    assert "accuracy" in report and "oos_recall" not in report and "threshold" not in report


def test_a_base_without_out_of_scope_examples_borrows_general_ones():
    """Refuses off-topic questions it has never seen (CLINC150's out-of-scope validation set,
    not the bundled list) while still answering its own."""
    demo = load_knowledge("services/knowledge/demo/shop.yaml")
    kb = KnowledgeBase(tuple(e for e in demo.entries if "out_of_scope" not in e.tags))
    engine = ClassicalEngine.train(kb)
    unseen = [text for text, _ in json.loads(CLINC.read_text())["oos_val"]]
    refused = [m.entry is None or m.confidence < 0.5 for m in map(engine.match, unseen)]
    assert sum(refused) / len(refused) >= 0.8
    for question, intent in [
        ("where is my parcel", "order_status"),
        ("i forgot my password", "reset_password"),
    ]:
        assert engine.match(question).entry.id == intent


def test_borrowed_questions_leave_out_what_the_base_answers_and_stay_few():
    hotels = ["find me a hotel in rome", "book a hotel room", "hotel near the station"]
    flights = ["change my flight", "flight status", "is my flight delayed"]
    borrowed = borrowed_out_of_scope(hotels + flights, ["hotel"] * 3 + ["flight"] * 3)
    assert "find me a hotel in barcelona" in general_out_of_scope()
    assert "find me a hotel in barcelona" not in borrowed
    assert len(borrowed) == BORROW_RATIO * 3  # 3 questions per entry
    assert set(borrowed) < set(general_out_of_scope())
