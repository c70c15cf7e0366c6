"""The classical engine: TF-IDF word and character n-grams with a linear classifier.

CPU only, no model download; trains on the demo in milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from services.knowledge.model import Engine, Entry, Hit, KnowledgeBase, Match


class ClassicalEngine(Engine):
    name = "classical"

    def __init__(self, kb: KnowledgeBase, words: TfidfVectorizer, chars: TfidfVectorizer,
                 model: LogisticRegression, labels: list[Entry]) -> None:
        self.kb = kb
        self.words, self.chars, self.model, self.labels = words, chars, model, labels

    @classmethod
    def train(cls, kb: KnowledgeBase) -> ClassicalEngine:
        texts, targets, labels = [], [], []
        for entry in kb.entries:
            if entry.questions:
                labels.append(entry)
                texts.extend(entry.questions)
                targets.extend([len(labels) - 1] * len(entry.questions))
        if len(labels) < 2:
            raise ValueError("the classical engine needs at least two entries with questions")
        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
        features = hstack([words.fit_transform(texts), chars.fit_transform(texts)]).tocsr()
        model = LogisticRegression(C=20.0, max_iter=2000)
        model.fit(features, np.asarray(targets))
        return cls(kb, words, chars, model, labels)

    def match(self, text: str, k: int = 3) -> Match:
        features = hstack([self.words.transform([text]), self.chars.transform([text])]).tocsr()
        if features.nnz == 0:
            return Match(None, 0.0, ())
        probs = self.model.predict_proba(features)[0]
        order = np.argsort(probs)[::-1][:k]
        hits = tuple(Hit(self.labels[self.model.classes_[i]], float(probs[i])) for i in order)
        best = hits[0]
        return Match(best.entry, best.score, hits)
