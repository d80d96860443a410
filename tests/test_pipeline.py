"""The question's way as stages (qa/pipeline/): a new stage that owns a model is one class and one
line of configuration; the stages run in order, each once, and say what they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import qa.pipeline.fusion
import qa.pipeline.sentences
from qa.config import Settings
from qa.encoder import HashingEncoder
from qa.engine import Engine
from qa.pipeline import Pipeline
from qa.pipeline.query import QueryStage
from qa.pipeline.stage import Work


class DocumentPrior:
    """A stage that owns a model (here, a learned score per document, read from a file): loaded once
    by ``warm_up``; each question, the reranked candidates re-scored by it."""

    name = "document prior"

    def __init__(self, model_file: Path, weight: float) -> None:
        self.model_file = model_file
        self.weight = weight
        self.prior: dict[str, float] | None = None
        self.loads = 0

    def warm_up(self) -> None:
        self.prior = json.loads(self.model_file.read_text())
        self.loads += 1

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "about": "a prior per document", "model": self.model_file.name}

    def run(self, work: Work) -> None:
        assert self.prior is not None, "warm_up was not called before the first question"
        for candidate in work.candidates:
            doc_id = work.index.passages[candidate.position].doc_id
            candidate.score += self.weight * self.prior.get(doc_id, 0.0)
        work.candidates.sort(key=lambda c: -c.score)
        for rank, candidate in enumerate(work.candidates, start=1):
            candidate.rank = rank


def test_a_new_stage_that_owns_a_model_is_one_class_and_one_line(
    built_settings: Settings, tmp_path: Path
) -> None:
    model = tmp_path / "prior.json"
    model.write_text(json.dumps({"trains": 1.0}))
    prior = DocumentPrior(model, weight=10.0)
    encoder = HashingEncoder()
    plain = Engine(built_settings, encoder, reader=None)
    plain.load()
    pipeline = Pipeline(built_settings, encoder, reader=None).with_stage(prior, after="rerank")  # the line
    engine = Engine(built_settings, encoder, reader=None, pipeline=pipeline)
    engine.load()
    assert prior.loads == 1  # by the engine, before any question
    question = "How many eggs does the queen lay each day?"
    assert plain.ask(question).citations[0].doc_id == "bees"
    result = engine.ask(question, explain=True, top_k=5)
    assert result.ranking[0].doc_id == "trains"  # the stage ran, after reranking, before the answer
    engine.ask("When did the Shinkansen open?")
    assert prior.loads == 1  # not per question
    stages = [d["stage"] for d in engine.pipeline.describe()]
    assert stages[stages.index("rerank") + 1] == "document prior"
    assert result.explain is not None and [d["stage"] for d in result.explain["stages"]] == stages
    assert [d["stage"] for d in plain.pipeline.describe()] == [s for s in stages if s != "document prior"]


def test_a_stage_is_placed_after_one_that_exists(built_settings: Settings) -> None:
    pipeline = Pipeline(built_settings, HashingEncoder(), reader=None)
    with pytest.raises(ValueError, match="no stage named 'reranking'"):
        pipeline.with_stage(DocumentPrior(Path("unused"), 1.0), after="reranking")


def test_sentences_are_scored_once_per_question_and_the_candidates_carry_them(
    built_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(built_settings, HashingEncoder(), reader=None)
    engine.load()
    calls = []
    score = qa.pipeline.sentences.score_sentences

    def counted(*args: Any) -> Any:
        calls.append(args[1])
        return score(*args)

    monkeypatch.setattr(qa.pipeline.sentences, "score_sentences", counted)
    monkeypatch.setattr(qa.pipeline.fusion, "score_sentences", counted)
    result = engine.ask("How many eggs does the queen lay each day?", use_cache=False, explain=True)
    assert len(calls) == 1  # reranking and the answer read the same scores
    assert result.answered and result.explain is not None
    (query,) = engine.queries(["How many eggs does the queen lay each day?"], engine.index)
    work = engine.pipeline.run(engine.pipeline.work(engine.index, query, engine.weights), until="rerank")
    top = work.candidates[0]
    assert top.sentences and result.answer is not None
    assert [(s.start, s.end) for s in top.sentences] == [
        (s["start"], s["end"]) for s in result.explain["sentences"]
    ]


def test_an_ablation_is_a_stage_configured_otherwise_not_a_patched_module(built_settings: Settings) -> None:
    engine = Engine(built_settings, HashingEncoder(), reader=None)
    engine.load()
    question = "According to the article, how many eggs does the queen lay?"
    (served,) = engine.queries([question], engine.index)
    variant = engine.pipeline.replaced(QueryStage(engine.encoder, prepare_questions=False))
    (unprepared,) = variant.queries([question], engine.index)
    assert "article" not in served.text and "article" in unprepared.text.lower()
    corpus = engine.pipeline.replaced(QueryStage(engine.encoder, word_weights="corpus"))
    (weighed,) = corpus.queries([question], engine.index)
    assert [w.weight for w in weighed.words] == [w.rank_weight for w in weighed.words]
    assert not np.allclose([w.weight for w in served.words], [w.rank_weight for w in served.words])
    (again,) = engine.queries([question], engine.index)  # the service's pipeline is untouched
    assert again.text == served.text
