"""Train one engine tier and time it: the part of `make kb-eval` that runs the engine.

`bench.kb_eval` calls `measure` for today's engine, and runs this file as a script inside a
temporary worktree of an older commit (`PYTHONPATH=<worktree> python bench/kb_measure.py
JOB.json`), so both engines are trained and timed on the same data in the same run and
scored by the same code. It only uses what every version has: `knowledge_from_examples`,
`engine_class`, `train_engine` and `Engine.match`.

Times are wall-clock and CPU (training: the process's CPU seconds over all threads; a
query: its thread's CPU time), since on a shared machine the wall clock also counts the
neighbours' work.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any


def measure(train: list[tuple[str, str]], texts: list[str], engine_name: str) -> dict[str, Any]:
    """Train on `train` ([text, label] rows), then match each of `texts` once, timed."""
    import services
    from services.knowledge.datasets import knowledge_from_examples
    from services.knowledge.engines import engine_class, train_engine

    kb = knowledge_from_examples([(t, label) for t, label in train])
    # Importing the engine's libraries (sklearn, torch...) is not training: done before the
    # clock starts, in this process and in the baseline's alike.
    engine_class(engine_name)
    wall, cpu = time.perf_counter(), time.process_time()
    engine = train_engine(kb, engine_name)
    train_seconds, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.match(texts[0], 1)  # first-call setup (lazy imports, caches) is not a query's cost
    best, confidence, top, latency, latency_cpu = [], [], [], [], []
    for text in texts:
        wall, cpu = time.perf_counter(), time.thread_time()
        match = engine.match(text, 1)
        latency_cpu.append((time.thread_time() - cpu) * 1000)
        latency.append((time.perf_counter() - wall) * 1000)
        # The best answerable entry and its probability, whichever class wins: the bot answers
        # with it when that reaches the threshold (Match.answer). Every version lists it first
        # among the hits (these knowledge bases have no article passages).
        first = match.hits[0] if match.hits else None
        best.append(first.entry.id if first is not None else None)
        confidence.append(first.score if first is not None else 0.0)
        top.append(match.top_confidence)  # the likeliest class's, out-of-scope included
    return {
        "services": str(Path(services.__path__[0]).resolve()),
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu,
        "best": best,
        "confidence": confidence,
        "top_confidence": top,
        "latency_ms": latency,
        "latency_cpu_ms": latency_cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print(json.dumps(measure(job["train"], job["texts"], job["engine"])))
