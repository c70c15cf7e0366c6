"""`python -m bench.semantic_train DATA.json`: the semantic tier's training, cold and warm.

`make kb-eval` trains each engine once in a fresh process, so its `train_seconds` is a cold
start: every question is embedded. In a running service the embedding cache (by text hash,
across trainings) makes the next training after an edit to the knowledge base embed only
the new questions. This trains on `train` (+ `oos_train`) in one process, cold, then again
after one question was added to one entry (warm), and prints both, wall-clock and CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from services.knowledge.datasets import knowledge_from_examples, load_dataset
from services.knowledge.engines import train_engine
from services.knowledge.model import KnowledgeBase


def timed(kb: KnowledgeBase) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    train_engine(kb, "semantic")
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    args = parser.parse_args()
    kb = knowledge_from_examples(load_dataset(args.data).split("train", "oos_train"))
    cold, cold_cpu = timed(kb)
    first = kb.entries[0]
    edited = replace(first, questions=(*first.questions, "a question nobody asked before"))
    warm, warm_cpu = timed(replace(kb, entries=(edited, *kb.entries[1:])))
    print(
        json.dumps(
            {
                "examples": sum(len(e.questions) for e in kb.entries),
                "train_cold_seconds": round(cold, 2),
                "train_cold_cpu_seconds": round(cold_cpu, 2),
                "train_warm_seconds": round(warm, 2),
                "train_warm_cpu_seconds": round(warm_cpu, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
