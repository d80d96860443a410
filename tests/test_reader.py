"""The reader stage: how its probability decides, what it reads, the rule `qa calibrate` fits, and
the answer-removed benchmark's documents. The real reader is checked in test_integration.py."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.removed import ArticleSentence, _document, article_sentences, gold_answers
from qa.config import Settings
from qa.encoder import HashingEncoder
from qa.engine import Engine
from qa.evaluation.calibrate import (
    EVERY_MARGIN,
    MIN_READER_QUESTIONS,
    Observation,
    confidence_data,
    fit_confidence,
    fit_reader_rule,
    rates,
    reliability,
    search_overrule,
    search_reader_rule,
)
from qa.pipeline.answerability import EVERY, FACT, ReaderRule, Thresholds, thresholds_for
from qa.pipeline.confidence import CONFIDENCE_INPUTS, RELEVANCE_INPUTS, Calibrated, Logistic
from qa.pipeline.refusal import what_is_asked
from qa.reader import Reading, load_reader

RULE = {"reader": 0.5}


class FakeReader:
    """Says every sentence states the answer with one probability; records what it was given."""

    def __init__(self, folder: Path, probability: float) -> None:
        self.folder = folder
        self.default_threshold = RULE["reader"]
        self.default_judges = FACT
        self.default_overrule: float | None = None
        self.default_calibrated = Calibrated()
        self.name = "fake-reader"
        self.probability = probability
        self.calls: list[tuple[str, list[str]]] = []

    def readings(self, pairs: list[tuple[str, str]], contexts: list[str] | None = None) -> list[Reading]:
        self.calls.append((pairs[0][0], [sentence for _, sentence in pairs]))
        return [Reading(self.probability, _first_number(sentence)) for _, sentence in pairs]


def _first_number(sentence: str) -> tuple[int, int] | None:
    """Where the fake reader points: the sentence's first number, if any."""
    found = re.search(r"[0-9][0-9,]*", sentence)
    return found.span() if found else None


def engine_with(settings: Settings, reader: FakeReader | None) -> Engine:
    engine = Engine(settings, HashingEncoder(), reader=reader)
    engine.load()
    return engine


def test_the_reader_refuses_what_the_thresholds_would_answer(
    built_settings: Settings, tmp_path: Path
) -> None:
    question = "How many eggs does the queen lay each day?"
    assert engine_with(built_settings, None).ask(question).answered  # the thresholds alone answer it
    doubting = FakeReader(tmp_path / "no", 0.05)
    result = engine_with(built_settings, doubting).ask(question, explain=True)
    assert not result.answered and result.citations == []
    assert result.reason == (
        "The documents don't answer this question. The closest passage, in “bees”, does not state it."
    )
    assert result.explain["thresholds"]["rule"] == "reader"
    assert result.explain["signals"]["reader"] == pytest.approx(0.05)
    assert engine_with(built_settings, FakeReader(tmp_path / "yes", 0.95)).ask(question).answered


def test_the_reader_reads_the_best_sentences_of_the_best_passage_in_one_call(
    built_settings: Settings, tmp_path: Path
) -> None:
    reader = FakeReader(tmp_path / "r", 0.9)
    settings = built_settings.model_copy(update={"reader_sentences": 1})
    result = engine_with(settings, reader).ask("How many eggs does the queen lay each day?", explain=True)
    assert len(reader.calls) == 1
    question, sentences = reader.calls[0]
    assert sentences == ["The queen lays about 2,000 eggs a day in summer."]
    read = [s for s in result.explain["sentences"] if s["reader"] is not None]
    assert [s["start"] for s in read] == [result.answer.start]
    reader.calls.clear()
    engine_with(built_settings, reader).ask("the")  # nothing to look for: refused before reading
    assert reader.calls == []


def test_a_fact_answer_carries_the_words_the_reader_points_at_verbatim_inside_the_sentence(
    built_settings: Settings, tmp_path: Path
) -> None:
    engine = engine_with(built_settings, FakeReader(tmp_path / "r", 0.9))
    result = engine.ask("How many eggs does the queen lay each day?")
    answer = result.answer
    assert result.answered and answer.short is not None
    text = engine.index.documents[answer.doc_id].text
    assert answer.short.text == "2,000" == text[answer.short.start : answer.short.end]
    assert answer.start <= answer.short.start < answer.short.end <= answer.end
    body = result.to_json()
    assert body["answer"]["short"] == {
        "text": "2,000",
        "start": answer.short.start,
        "end": answer.short.end,
        "probability": 0.9,
    }
    # a question that does not ask for a fact has no short answer, nor has a service without the reader
    why = engine.ask("Why do worker bees gather nectar and pollen from flowers?")
    assert why.answered and why.answer.short is None
    assert (
        engine_with(built_settings, None).ask("How many eggs does the queen lay each day?").answer.short
        is None
    )


def test_a_reader_judging_every_question_decides_why_questions_too(
    built_settings: Settings, tmp_path: Path
) -> None:
    why = "Why do worker bees gather nectar and pollen from flowers?"
    doubting = FakeReader(tmp_path / "no", 0.05)
    judging_facts = engine_with(built_settings, doubting).ask(why, explain=True)
    assert judging_facts.answered  # a why question: the thresholds decide
    assert judging_facts.explain["signals"]["judged_by_reader"] is False
    doubting.default_judges = EVERY
    judging_every = engine_with(built_settings, doubting).ask(why, explain=True)
    assert not judging_every.answered
    assert judging_every.explain["signals"]["judged_by_reader"] is True
    assert judging_every.explain["thresholds"]["reader_judges"] == EVERY
    assert "the reader gives 0.05" in judging_every.explain["decision"]
    assert engine_with(built_settings, FakeReader(tmp_path / "yes", 0.95)).ask(why).answered


def test_a_sure_reader_answers_a_question_in_other_words_that_the_coverage_threshold_refuses(
    built_settings: Settings, tmp_path: Path
) -> None:
    question = "How many eggs does the ruler of the hive produce daily?"  # few of the passage's words
    assert not engine_with(built_settings, None).ask(question).answered  # the coverage threshold refuses
    sure = FakeReader(tmp_path / "sure", 0.95)
    assert not engine_with(built_settings, sure).ask(question).answered  # no overrule: the thresholds decide
    sure.default_overrule = 0.9
    result = engine_with(built_settings, sure).ask(question, explain=True)
    assert result.answered and "2,000 eggs" in result.answer.text
    assert "the reader gives 0.95" in result.explain["decision"]
    assert "0.90 or more overrules the coverage threshold" in result.explain["decision"]
    assert result.explain["thresholds"]["reader_overrules_coverage"] == 0.9
    unsure = FakeReader(tmp_path / "unsure", 0.6)
    unsure.default_overrule = 0.9
    refused = engine_with(built_settings, unsure).ask(question, explain=True)
    assert not refused.answered and "the reader gives 0.60" in refused.explain["decision"]
    assert "doesn't mention" in (refused.reason or "")  # the plain reason, as for any coverage refusal
    # a why question too, which the reader does not judge when the thresholds admit it
    why = "Why do the workers collect sweet liquid from blossoms?"
    assert not engine_with(built_settings, unsure).ask(why).answered
    assert "gather nectar" in engine_with(built_settings, sure).ask(why).answer.text
    # a question the similarity threshold refuses is not the reader's to overrule
    assert not engine_with(built_settings, sure).ask("When did the bullet train start running?").answered


def test_a_calibrated_rule_keeps_its_overrule_and_an_older_one_takes_the_reader_s(
    built_settings: Settings, tmp_path: Path
) -> None:
    from qa.store import IndexFolder

    reader = FakeReader(tmp_path / "r", 0.9)
    reader.default_overrule = 0.9
    model = engine_with(built_settings, None).index.model
    stored = {"reader": reader.name, "threshold": 0.3, "judges": FACT}

    def rule_with(reader_rule: dict[str, Any]) -> ReaderRule:
        thresholds = {"similarity": 0.2, "coverage": 0.5}
        IndexFolder(built_settings.index_dir).save_calibration(
            {"model": model, "thresholds": thresholds, "reader_rule": reader_rule}
        )
        engine = engine_with(built_settings, reader)
        rule = engine.pipeline.answerability.rule_for(engine.index)
        assert isinstance(rule, ReaderRule)
        return rule

    # stored before the reader could overrule: the reader's own
    assert rule_with(stored) == ReaderRule(0.2, 0.5, 0.3, "calibrated", FACT, 0.9)
    assert rule_with({**stored, "overrule": None}).overrule is None  # as fitted: never
    assert rule_with({**stored, "overrule": 0.95}).overrule == 0.95


def test_the_answer_rule_follows_the_reader(built_settings: Settings, tmp_path: Path) -> None:
    engine = engine_with(built_settings, None)
    assert isinstance(thresholds_for(engine.index, built_settings), Thresholds)
    reader = FakeReader(tmp_path / "r", 0.9)
    rule = thresholds_for(engine.index, built_settings, reader)
    assert rule == ReaderRule(0.2, 0.5, 0.5, source="default")  # the settings' thresholds, rule.json's reader


def test_a_missing_or_disabled_reader_is_none_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert load_reader("off") is None
    with caplog.at_level(logging.WARNING):
        assert load_reader(str(tmp_path / "nothing")) is None
    assert "answering without the reader" in caplog.text


def test_a_retrained_reader_of_the_same_size_does_not_take_the_calibration_stored_for_another(
    built_settings: Settings, tmp_path: Path
) -> None:
    from qa.reader import BUNDLED, Reader
    from qa.store import IndexFolder

    def copy(name: str, change: bool = False) -> Reader:
        folder = tmp_path / name / "reader"
        folder.mkdir(parents=True)
        for file in ("model.onnx", "tokenizer.json", "meta.json", "rule.json"):
            shutil.copy(BUNDLED / file, folder / file)
        if change:  # one byte of the weights, in the middle of the file: same size, other weights
            weights = bytearray((folder / "model.onnx").read_bytes())
            weights[len(weights) // 2] ^= 1
            (folder / "model.onnx").write_bytes(bytes(weights))
        return Reader(folder)

    shipped, same, retrained = copy("a"), copy("b"), copy("c", change=True)
    assert (shipped.folder / "model.onnx").stat().st_size == (retrained.folder / "model.onnx").stat().st_size
    assert shipped.name == same.name != retrained.name
    model = engine_with(built_settings, None).index.model
    IndexFolder(built_settings.index_dir).save_calibration(
        {
            "model": model,
            "thresholds": {"similarity": 0.2, "coverage": 0.5},
            "reader_rule": {"reader": shipped.name, "threshold": 0.77, "judges": FACT, "overrule": None},
        }
    )
    assert thresholds_for(engine_with(built_settings, same).index, built_settings, same).reader == 0.77
    own = thresholds_for(engine_with(built_settings, retrained).index, built_settings, retrained)
    assert isinstance(own, ReaderRule) and own.reader == retrained.default_threshold != 0.77


def test_readyz_warns_of_a_reader_with_no_fitted_threshold(built_settings: Settings, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from qa.api import create_app
    from qa.reader import BUNDLED

    folder = tmp_path / "reader"
    folder.mkdir()
    for name in ("model.onnx", "tokenizer.json", "meta.json"):
        shutil.copy(BUNDLED / name, folder / name)  # the shipped weights without their rule.json
    settings = built_settings.model_copy(update={"reader": str(folder)})

    def ready() -> dict[str, Any]:
        with TestClient(create_app(settings, encoder=HashingEncoder())) as client:
            return client.get("/readyz").json()

    unfitted = ready()
    assert unfitted["reader_threshold"] == 0.0
    assert len(unfitted["warnings"]) == 1 and "refuses nothing" in unfitted["warnings"][0]
    (folder / "rule.json").write_text(json.dumps({"reader": 0.3}), encoding="utf-8")
    fitted = ready()
    assert fitted["reader_threshold"] == 0.3 and fitted["warnings"] == []
    assert fitted["reader_judges"] == FACT  # a rule.json that does not say: fact questions
    assert fitted["reader_overrule"] is None  # nor when to overrule the coverage: never
    rule = {"reader": 0.3, "judges": EVERY, "overrule": 0.85}
    (folder / "rule.json").write_text(json.dumps(rule), encoding="utf-8")
    assert (ready()["reader_judges"], ready()["reader_overrule"]) == (EVERY, 0.85)
    (folder / "rule.json").write_text(json.dumps({"reader": 0.3, "overrule": 2}), encoding="utf-8")
    assert ready()["reader"] is None  # not a probability: served without the reader
    (folder / "rule.json").write_text(json.dumps({"reader": 0.3, "judges": "some"}), encoding="utf-8")
    broken = ready()  # a rule.json that cannot be read: served without the reader, as when it is missing
    assert broken["reader"] is None and broken["answer_rule"] == "thresholds" and broken["status"] == "ready"


@pytest.mark.parametrize(
    ("question", "clause"),
    [
        ("Which network broadcast Super Bowl 50?", "which network broadcast Super Bowl 50"),
        ("Who developed GigaChat?", "who developed GigaChat"),
        ("What is the main goal of the task force?", "what the main goal of the task force is"),
        ("How many people were at the meeting?", "how many people were at the meeting"),
        ("What colour is the kettle?", "what colour the kettle is"),
        ("What is the goal of the planned reform?", "what the goal of the planned reform is"),
        ("Which network was founded in 1943?", "which network was founded in 1943"),
        ("Who was elected president?", "who was elected president"),
        ("Which countries is Russia teaming up with?", None),  # where "is" goes is not plain
        ("Where was the task force first presented?", None),
        ("How many eggs does the queen lay?", None),
        ("how many holiday days do I get", None),  # the asked-for phrase runs on to "do I get"
        ("What kind of AI markets does Russia want?", None),
        ("Which bank built the model that was shown?", "which bank built the model that was shown"),
        ("Did Putin sign it?", None),
        ("GigaChat developer", None),
        ("  ?  ", None),
    ],
)
def test_what_is_asked_is_said_in_the_question_s_words(question: str, clause: str | None) -> None:
    assert what_is_asked(question) == clause


def observation(answerable: bool, reader: float, source: str, factoid: bool = True) -> Observation:
    kind = "answerable" if answerable else "near_topic"
    return Observation(answerable, kind, 0.5, 0.7, True, True, source, reader, factoid)


def test_the_fitted_reader_threshold_separates_fact_questions_by_the_reader() -> None:
    obs = [observation(True, p, "a") for p in (0.7, 0.8, 0.9, 0.95)]
    obs += [observation(False, p, "a") for p in (0.02, 0.05, 0.1, 0.2)]
    obs += [
        observation(True, 0.9, "b"),
        observation(False, 0.1, "b"),
        observation(True, 0.01, "b", factoid=False),
    ]
    thresholds = Thresholds(0.3, 0.5)
    rule, balanced = search_reader_rule(obs, thresholds)
    assert balanced == 1.0 and 0.2 <= rule.reader < 0.7
    assert (rule.similarity, rule.coverage) == (0.3, 0.5)
    assert rule.admit(0.5, 0.7, True, True, 0.9) and not rule.admit(0.5, 0.7, True, True, 0.05)
    assert rule.admit(0.5, 0.7, True, False, 0.05)  # not a fact question: the thresholds decide
    assert not rule.admit(0.1, 0.7, True, True, 0.9)  # the thresholds still apply
    figures = rates(obs, rule)
    assert figures["answered_answerable"] == 1.0 and figures["refused_near_topic"] == 1.0
    _, judging_everything = search_reader_rule(obs, thresholds, EVERY)
    assert judging_everything < balanced  # the why-question, judged too, is refused or costs refusals


def test_the_reader_overrules_the_coverage_threshold_alone_and_only_when_sure() -> None:
    rule = ReaderRule(0.3, 0.5, 0.2, overrule=0.9)
    # close enough, a value of the kind asked for, too few of the question's key words
    assert rule.admit(0.5, 0.2, True, True, 0.95)
    assert not rule.admit(0.5, 0.2, True, True, 0.85)  # not sure enough
    assert rule.admit(0.5, 0.2, True, False, 0.95)  # a why or how question too: it is sure
    assert not rule.admit(0.5, 0.2, True, False, 0.85)
    assert not rule.admit(0.1, 0.2, True, True, 0.99)  # too far from the question
    assert not rule.admit(0.5, 0.2, False, True, 0.99)  # no value of the kind asked for
    assert not ReaderRule(0.3, 0.5, 0.2).admit(0.5, 0.2, True, True, 0.99)  # no overrule fitted
    assert rule.admit(0.5, 0.7, True, True, 0.25)  # what the thresholds admit: the reader's threshold


def short_of_coverage(answerable: bool, reader: float, source: str = "a") -> Observation:
    """A fact question close enough to its passage, which holds few of its key words."""
    kind = "answerable" if answerable else "near_topic"
    return Observation(answerable, kind, 0.5, 0.2, True, True, source, reader, True)


def test_calibrate_lets_the_reader_overrule_where_its_added_answers_are_as_often_right() -> None:
    rule = ReaderRule(0.3, 0.5, 0.5)
    # the rule answers four questions, three rightly (weighted: 0.6, the unanswerable weighing double)
    answered = [observation(True, 0.9, "a")] * 3 + [observation(False, 0.9, "a")]
    refused = [observation(False, 0.1, "a")]
    added = [short_of_coverage(True, 0.97), short_of_coverage(True, 0.93), short_of_coverage(False, 0.88)]
    below = [short_of_coverage(True, 0.8)]
    obs = answered + refused + added + below
    # the lowest step before 0.88, where the answers it adds are right half the time
    assert search_overrule(obs, rule) == 0.89
    fitted = rates(obs, ReaderRule(0.3, 0.5, 0.5, overrule=0.89))
    assert fitted["answered_answerable"] == 5 / 6 and fitted["refused_near_topic"] == 2 / 3
    # the surest answer it would add is wrong: it never overrules
    assert search_overrule([*answered, *refused, short_of_coverage(False, 0.99), *added], rule) is None
    assert search_overrule(answered + refused, rule) is None  # nothing to add
    # too few questions to refit on: the reader's own stays, as its threshold does
    assert search_overrule(obs, ReaderRule(0.3, 0.5, 0.5, overrule=0.75), keep=True) == 0.75
    fitted_rule, _, _ = fit_reader_rule(obs, Thresholds(0.3, 0.5))
    assert fitted_rule.overrule == 0.89


def test_calibrate_lets_the_reader_judge_every_question_only_where_that_fits_better() -> None:
    thresholds = Thresholds(0.3, 0.5)
    facts = [observation(True, 0.9, "a"), observation(False, 0.1, "a")] * MIN_READER_QUESTIONS
    # why questions the thresholds admit: answerable ones the reader rates high, unanswered ones low
    telling = [observation(True, 0.8, "a", factoid=False), observation(False, 0.1, "a", factoid=False)]
    rule, balanced, by_judges = fit_reader_rule(facts + telling * MIN_READER_QUESTIONS, thresholds)
    assert rule.judges == EVERY and balanced == 1.0 and by_judges[EVERY] > by_judges[FACT] + EVERY_MARGIN
    assert rates(telling, rule)["refused_near_topic"] == 1.0
    # the reader rates them alike: judging them would refuse answerable ones or answer none better
    blind = [observation(True, 0.2, "a", factoid=False), observation(False, 0.2, "a", factoid=False)]
    rule, _, by_judges = fit_reader_rule(facts + blind * MIN_READER_QUESTIONS, thresholds)
    assert rule.judges == FACT and by_judges[EVERY] <= by_judges[FACT]
    # too few questions of each kind to refit either: the reader's own threshold and choice stay
    own = ReaderRule(0.2, 0.6, 0.28, judges=EVERY, overrule=0.93)
    kept, _, _ = fit_reader_rule(facts[:4] + telling, thresholds, own)
    assert (kept.reader, kept.judges, kept.overrule, kept.source) == (0.28, EVERY, 0.93, "default")
    assert (kept.similarity, kept.coverage) == (0.3, 0.5)  # on the thresholds fitted here


def test_the_reader_threshold_is_refitted_only_on_enough_fact_questions_of_each_kind() -> None:
    thresholds = Thresholds(0.3, 0.5)
    few = [observation(True, 0.9, "a"), observation(False, 0.1, "a")] * 5  # separable, but ten
    kept, _ = search_reader_rule(few, thresholds, keep=0.28)
    assert (kept.reader, kept.source) == (0.28, "default")
    assert search_reader_rule(few, thresholds)[0].source == "calibrated"  # nothing to keep: fitted
    enough = [observation(True, 0.9, "a"), observation(False, 0.5, "a")] * MIN_READER_QUESTIONS
    refitted, balanced = search_reader_rule(enough, thresholds, keep=0.28)
    assert refitted.source == "calibrated" and 0.5 < refitted.reader <= 0.9 and balanced == 1.0


def test_the_confidence_is_as_often_right_as_it_says_on_answers_it_was_not_fitted_on() -> None:
    rng = np.random.default_rng(5)

    def answers(n: int, source: str) -> list[Observation]:
        # right more often the more the reader believes the sentence: P(right) = reader
        readers = rng.uniform(0.05, 0.95, n)
        return [
            Observation(
                True, "answerable", 0.6, 0.8, True, bool(rng.random() < p), source, float(p), True, 0.5
            )
            for p in readers
        ]

    rule = ReaderRule(0.3, 0.5, 0.0)
    confidence = fit_confidence(answers(2000, "fit"), rule)
    assert confidence is not None
    assert dict(zip(CONFIDENCE_INPUTS, confidence.weights))["reader_logit"] > 0.5
    table = reliability([(answers(2000, "new"), confidence)], rule, confidence_data)
    assert len(table) >= 4 and sum(b["count"] for b in table) == 2000
    for b in table:
        assert abs(b["mean_probability"] - b["true"]) < 0.08, b
    # all right or all wrong: nothing to learn, no confidence
    assert fit_confidence([o for o in answers(50, "x") if o.correct], rule) is None


def test_an_answer_carries_the_confidence_shipped_with_the_reader(
    built_settings: Settings, tmp_path: Path
) -> None:
    question = "How many eggs does the queen lay each day?"
    reader = FakeReader(tmp_path / "r", 0.9)
    assert engine_with(built_settings, reader).ask(question).answer.confidence is None  # none fitted
    odds = Logistic(CONFIDENCE_INPUTS, (0.0, 0.0, 0.0, 0.0, 1.0), 0.0)  # the reader's odds alone
    reader.default_calibrated = Calibrated(confidence=odds)
    result = engine_with(built_settings, reader).ask(question)
    assert result.answer.confidence == pytest.approx(0.9, abs=1e-3)
    assert result.to_json()["answer"]["confidence"] == result.answer.confidence
    # a why question is not read: the reader's odds count for nothing
    why = engine_with(built_settings, reader).ask("Why do worker bees gather nectar and pollen from flowers?")
    assert why.answer.confidence == pytest.approx(0.5)


def test_citations_carry_their_relevance_and_those_below_the_floor_are_left_out(
    built_settings: Settings, tmp_path: Path
) -> None:
    question = "How many eggs does the queen lay each day?"
    reader = FakeReader(tmp_path / "r", 0.9)
    plain = engine_with(built_settings, reader).ask(question, 5)
    assert len(plain.citations) > 1 and all(c.relevance is None for c in plain.citations)  # none fitted
    # relevant when its BM25 score is over half the best of the question
    words = Logistic(RELEVANCE_INPUTS, (0.0, 20.0, 0.0), -10.0)
    reader.default_calibrated = Calibrated(relevance=words, relevance_floor=0.5)
    result = engine_with(built_settings, reader).ask(question, 5)
    assert [c.passage_id for c in result.ranking] == [c.passage_id for c in plain.citations]
    relevance = [c.relevance for c in result.ranking]
    assert all(0 <= r <= 1 for r in relevance) and relevance[0] > 0.5
    assert [c.passage_id for c in result.citations] == [
        c.passage_id for i, c in enumerate(result.ranking) if i == 0 or c.relevance >= 0.5
    ]
    assert len(result.citations) < len(result.ranking)  # the passages about something else are left out
    assert result.to_json()["citations"][0]["relevance"] == relevance[0]


def test_calibrate_fits_the_relevance_on_every_citation_and_the_engine_uses_the_stored_fit(
    built_settings: Settings, tmp_path: Path
) -> None:
    from qa.evaluation.calibrate import default_does_better, fit, format_report, not_storable
    from qa.evaluation.evaluate import EvalItem
    from qa.pipeline.confidence import calibrated_for
    from qa.store import IndexFolder

    def item(n: int, question: str, evidence: str | None) -> EvalItem:
        kind = "answerable" if evidence else "near_topic"
        return EvalItem(f"q{n}", question, evidence is not None, [evidence] if evidence else [], kind)

    asked = [
        ("How many eggs does the queen lay each day?", "2,000 eggs a day"),
        ("When did the Shinkansen open?", "opened in Japan in 1964"),
        ("How fast do high-speed trains run?", "300 km/h"),
        ("How many workers live in a colony?", "60,000 workers"),
        ("What do worker bees gather?", "nectar and pollen"),
        ("How long does an inverter last?", "ten years"),
        ("What is the price of a Shinkansen ticket?", None),
        ("How much honey does a colony make?", None),
        ("Who designed the first solar panel?", None),
        ("How heavy is a queen bee?", None),
    ]
    engine = engine_with(built_settings, FakeReader(tmp_path / "r", 0.9))
    few = fit(engine, {"mine.jsonl": [item(n, q, e) for n, (q, e) in enumerate(asked)]})
    assert "relevance" not in few and "confidence" not in few  # ten questions: the shipped models stay
    assert "citation relevance: not refitted" in format_report(few)
    calibration = fit(engine, {"mine.jsonl": [item(n, q, e) for n, (q, e) in enumerate(asked * 8)]})
    relevance = calibration["relevance"]
    assert relevance["inputs"] == list(RELEVANCE_INPUTS) and relevance["floor"] == 0.1
    assert "citation relevance: logistic over similarity" in format_report(calibration)
    # one file: the reader rule held out within it, and a word when the default did better than that
    held = calibration["reader_rule"]["within_one_file"]
    assert held is not None and 0.0 <= held["balanced_accuracy"] <= 1.0
    assert calibration["in_use"]["source"] == "default"
    calibration["within_one_file"]["balanced_accuracy"] = 0.9  # the thresholds' own fit passes
    for in_use, said in ((held["balanced_accuracy"] + 0.01, True), (held["balanced_accuracy"], False)):
        calibration["in_use"]["balanced_accuracy"] = in_use
        assert ("The default rule does better on these questions" in format_report(calibration)) == said
        # and then the fit is not stored: the default is the better rule for questions to come
        assert (
            "the default rule does better on these questions" in (not_storable(calibration) or "")
        ) == said
    calibration["in_use"]["source"] = "calibrated"  # a rule fitted before, maybe on these questions
    calibration["in_use"]["balanced_accuracy"] = held["balanced_accuracy"] + 0.01
    assert default_does_better(calibration) is None
    IndexFolder(built_settings.index_dir).save_calibration(calibration)
    engine.load()
    stored = calibrated_for(engine.index, engine.reader)
    assert (
        stored.relevance == Logistic.from_json(relevance, RELEVANCE_INPUTS) and stored.relevance_floor == 0.1
    )
    assert all(c.relevance is not None for c in engine.ask(asked[0][0], 5).ranking)


ARTICLE = {
    "title": "Bees",
    "paragraphs": [
        {
            "context": "Honey bees live in colonies. The queen lays 2,000 eggs a day. Workers gather nectar.",
            "qas": [{"question": "How many eggs?", "answers": [{"text": "2,000", "answer_start": 45}]}],
        },
        {"context": "Bees dance to show where flowers are.", "qas": []},
    ],
}


def test_the_removed_document_lacks_exactly_the_answer_sentences() -> None:
    sentences = article_sentences(ARTICLE)
    assert [s.text for s in sentences][:2] == [
        "Honey bees live in colonies.",
        "The queen lays 2,000 eggs a day.",
    ]
    answers = gold_answers(ARTICLE["paragraphs"][0]["qas"][0])
    deleted = {i for i, s in enumerate(sentences) if s.holds(answers)}
    assert deleted == {1}
    text = _document(ARTICLE, sentences, deleted)
    assert "2,000" not in text
    assert "Honey bees live in colonies. Workers gather nectar.\n\nBees dance" in text
    assert ArticleSentence(0, 0, 5, "a  2,000\nx").holds(["2,000 x"])  # spaces squashed as SQuAD's answers


class RatingMiner:
    """A reader whose probabilities are fixed per sentence; records what it was asked to read."""

    def __init__(self, ratings: dict[str, float]) -> None:
        self.ratings = ratings
        self.read_calls: list[list[str]] = []

    def read(self, question: str, sentences: list[str]) -> list[float]:
        self.read_calls.append(sentences)
        return [self.ratings.get(s, 0.0) for s in sentences]


def test_a_mining_round_adds_the_miner_s_mistakes_and_leaves_the_other_pairs_as_they_were() -> None:
    from collections import Counter

    from tools.train_reader import CachedEncoder, training_pairs

    encoder = CachedEncoder(HashingEncoder())

    def pairs(miner: RatingMiner | None, above: float = 0.3) -> list:
        return training_pairs([ARTICLE], [], encoder, seed=5, miner=miner, hard_above=above)

    plain = pairs(None)
    miner = RatingMiner({"Workers gather nectar.": 0.9, "Bees dance to show where flowers are.": 0.5})
    mined = pairs(miner)
    # it read the sentences that do not hold the answer, never the answer sentence
    assert miner.read_calls and all("2,000" not in s for call in miner.read_calls for s in call)
    hard = [p for p in mined if p.kind == "hard"]
    assert sorted(p.sentence for p in hard) == [
        "Bees dance to show where flowers are.",
        "Workers gather nectar.",
    ]
    assert all(p.label == 0.0 for p in hard)
    assert Counter(p for p in mined if p.kind != "hard") == Counter(plain)
    # only what it rates above the line; a miner that makes no mistake adds nothing
    assert [p.sentence for p in pairs(miner, above=0.6) if p.kind == "hard"] == ["Workers gather nectar."]
    assert Counter(pairs(RatingMiner({}))) == Counter(plain)


def test_a_swapped_question_asks_about_a_name_or_number_the_answer_sentence_does_not_hold() -> None:
    import random

    from tools.train_reader import names_and_numbers, swapped

    sentence = "The Denver Broncos won Super Bowl 50 in 2016."
    article = names_and_numbers(
        "It was played in Santa Clara in 2016, after Super Bowl 49 and before Super Bowl 51."
    )
    assert article == ["Santa Clara", "2016", "Super Bowl", "49", "Super Bowl", "51"]
    made = {
        swapped("Who won Super Bowl 50 in 2016?", sentence, article, random.Random(seed))
        for seed in range(40)
    }
    # a number for a number, a name for a name, never one the sentence holds or sharing its words
    assert made == {
        "Who won Super Bowl 49 in 2016?",
        "Who won Super Bowl 51 in 2016?",
        "Who won Santa Clara 50 in 2016?",
        "Who won Super Bowl 50 in 49?",
        "Who won Super Bowl 50 in 51?",
    }
    assert swapped("Who won the match?", sentence, article, random.Random(0)) is None  # nothing to swap


def test_a_made_question_asks_for_a_name_or_number_of_its_sentence_in_its_clause() -> None:
    import random

    from tools.train_reader import made_question

    sentence = "After a long season, the Denver Broncos won the final in 2016 with 24 points."
    made = {made_question(sentence, random.Random(seed)) for seed in range(40)}
    assert made == {
        ("What won the final in 2016 with 24 points?", (25, 39)),
        ("The Denver Broncos won the final in when with 24 points?", (57, 61)),
        ("The Denver Broncos won the final in 2016 with how many points?", (67, 69)),
    }
    for _, (begin, end) in made:
        assert sentence[begin:end] in {"Denver Broncos", "2016", "24"}  # the answer, verbatim
    assert made_question("Honey bees live in colonies.", random.Random(0)) is None  # nothing to ask for
    assert made_question("It was 2016.", random.Random(0)) is None  # too short to be a question


def test_a_polar_question_puts_the_auxiliary_first_and_a_why_question_asks_for_the_reason() -> None:
    import random

    from tools.train_reader import polar_question

    sentence = "The dynasty was established by Kublai Khan in 1271."
    made = {polar_question(sentence, random.Random(seed)) for seed in range(20)}
    assert {question for question, _ in made} == {"Was the dynasty established by Kublai Khan in 1271?"}
    # what its negatives must not hold: a name or number of what it asks about, verbatim
    assert {sentence[begin:end] for _, (begin, end) in made} == {"Kublai Khan", "1271"}
    why = "The museum was closed to visitors because of flooding in the basement."
    question, (begin, end) = polar_question(why, random.Random(0))
    assert question == "Why was the museum closed to visitors?" and why[begin:end] in {"flooding", "basement"}
    assert polar_question("Oxygen is poisonous to anaerobic bacteria.", random.Random(0))[0] == (
        "Is oxygen poisonous to anaerobic bacteria?"  # a common word opening the sentence, not a name
    )
    assert polar_question("In 1852 the museum was founded.", random.Random(0)) is None  # no plain subject
    assert (
        polar_question("The country had a long history of wars.", random.Random(0)) is None
    )  # "had": the verb


def test_made_questions_pair_their_sentence_with_sentences_that_do_not_hold_the_value() -> None:
    from collections import Counter

    from tools.train_reader import CachedEncoder, training_pairs

    encoder = CachedEncoder(HashingEncoder())
    plain = training_pairs([ARTICLE], [], encoder, seed=5, rewrite=0.0)
    more = training_pairs([ARTICLE], [], encoder, seed=5, made=100, rewrite=0.0)
    made = [p for p in more if p.kind.startswith("made")]
    positives = [p for p in made if p.kind == "made"]
    assert [p.question for p in positives] == ["The queen lays how many eggs a day?"]
    (positive,) = positives
    assert positive.label == 1.0 and positive.sentence[slice(*positive.answer)] == "2,000"
    negatives = [p for p in made if p.label == 0.0]
    assert negatives and all("2,000" not in p.sentence for p in negatives)
    assert Counter(p for p in more if not p.kind.startswith("made")) == Counter(plain)


def test_written_questions_pair_their_evidence_sentence_and_unanswered_ones_only_negatives() -> None:
    from collections import Counter

    import pytest

    from tools.train_reader import CachedEncoder, training_pairs

    encoder = CachedEncoder(HashingEncoder())
    written = [
        {"article": "Bees", "question": "Why do bees dance?", "evidence": "to show where flowers are"},
        {"article": "Bees", "question": "How long does a queen live?", "evidence": None},
        {"article": "Wasps", "question": "Do wasps make honey?", "evidence": None},  # another article: unused
    ]
    plain = training_pairs([ARTICLE], [], encoder, seed=5, rewrite=0.0)
    more = training_pairs([ARTICLE], [], encoder, seed=5, rewrite=0.0, written=written, written_repeat=2)
    asked = [p for p in more if p.kind.startswith("written")]
    positives = [p for p in asked if p.label == 1.0]
    assert {(p.question, p.sentence) for p in positives} == {
        ("Why do bees dance?", "Bees dance to show where flowers are.")
    }
    assert len(positives) == 2  # each pair twice
    assert all(
        p.sentence != "Bees dance to show where flowers are."
        for p in asked
        if p.question == "Why do bees dance?" and p.label == 0.0
    )
    unanswered = [p for p in asked if p.question == "How long does a queen live?"]
    assert unanswered and all(p.label == 0.0 for p in unanswered)
    assert Counter(p.kind for p in unanswered) == {"written-near": 4, "written-random": 2}
    assert not any("wasps" in p.question for p in asked)
    assert Counter(p for p in more if not p.kind.startswith("written")) == Counter(plain)
    with pytest.raises(ValueError, match="not in the article"):
        training_pairs([ARTICLE], [], encoder, seed=5, written=[{**written[0], "evidence": "bees sing"}])


def test_written_documents_give_their_questions_pairs_and_leave_squad_s_pairs_as_they_were(
    tmp_path: Path,
) -> None:
    from collections import Counter

    from tools.train_reader import CachedEncoder, load_documents, training_pairs

    shop = {
        "title": "Bike shop",
        "text": "The shop opens at 9 am.\n\nA city bike costs 15 euros a day. E-bikes cost 35 euros a day.",
        "questions": [
            {"question": "How much is an e-bike?", "evidence": "E-bikes cost 35 euros"},
            {"question": "Do you sell helmets?", "evidence": None},
        ],
    }
    (tmp_path / "documents.jsonl").write_text(json.dumps(shop) + "\n", encoding="utf-8")
    documents, items = load_documents(tmp_path / "documents.jsonl")
    assert [len(d["paragraphs"]) for d in documents] == [2]
    assert [i["article"] for i in items] == ["Bike shop", "Bike shop"]
    encoder = CachedEncoder(HashingEncoder())
    plain = training_pairs([ARTICLE], [], encoder, seed=5, rewrite=0.0)
    more = training_pairs([ARTICLE], [], encoder, seed=5, rewrite=0.0, written=items, documents=documents)
    read = [p for p in more if p.kind.startswith("document")]
    assert {(p.question, p.sentence) for p in read if p.label == 1.0} == {
        ("How much is an e-bike?", "E-bikes cost 35 euros a day.")
    }
    assert Counter(p.kind for p in read if p.question == "Do you sell helmets?") == {
        "document-near": 2,
        "document-random": 1,
    }
    assert Counter(p for p in more if not p.kind.startswith("document")) == Counter(plain)
    assert not any(p.kind == "document-sibling" for p in more)
    # a document with parallel items: the answered question's nearest other sentence is a negative too
    with_items, items = load_documents(tmp_path / "documents.jsonl", siblings=True)
    items_read = training_pairs(
        [ARTICLE], [], encoder, seed=5, rewrite=0.0, written=items, documents=with_items
    )
    siblings = [p for p in items_read if p.kind == "document-sibling"]
    assert [(p.question, p.label) for p in siblings] == [("How much is an e-bike?", 0.0)]
    assert siblings[0].sentence in ("The shop opens at 9 am.", "A city bike costs 15 euros a day.")
    assert Counter(p for p in items_read if p.kind != "document-sibling") == Counter(more)


def test_each_answer_of_the_written_documents_is_in_one_sentence_of_its_document() -> None:
    from bench.removed import article_sentences
    from tools.train_reader import load_documents

    tools = Path(__file__).parent.parent / "tools"
    files = [
        tools / name for name in ("written_documents.jsonl", "written_items.jsonl", "written_news.jsonl")
    ]
    each = [load_documents(path)[0] for path in files]
    documents, items = load_documents(*files)
    assert [d["title"] for d in documents] == [d["title"] for d in sum(each, [])]
    assert len({d["title"] for d in documents}) == len(documents)
    sentences = {d["title"]: [s.text for s in article_sentences(d)] for d in documents}
    answered = [i for i in items if i["evidence"]]
    assert all(len(file) >= 20 for file in each) and len(answered) >= 100 and len(items) > len(answered)
    assert all(sum(i["evidence"] in s for s in sentences[i["article"]]) == 1 for i in answered)
    # the corpora kept to check the reader on are none of the documents written to train it
    checks = Path(__file__).parent.parent / "bench" / "items" / "corpus"
    headings = {
        path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# ") for path in checks.glob("*.md")
    }
    assert len(headings) == 9 and not headings & {d["title"] for d in documents}


def test_the_training_encoder_embeds_each_list_of_texts_once() -> None:
    from tools.train_reader import CachedEncoder

    calls: list[list[str]] = []

    class Counting(HashingEncoder):
        def encode(self, texts: list[str]) -> np.ndarray:
            calls.append(texts)
            return super().encode(texts)

    encoder = CachedEncoder(Counting())
    first = encoder.encode(["a bee", "a hive"])
    assert np.array_equal(encoder.encode(["a bee", "a hive"]), first)
    encoder.encode(["a hive"])
    assert calls == [["a bee", "a hive"], ["a hive"]]


def test_layer_decay_slows_each_layer_below_the_top_and_the_embeddings_most() -> None:
    """``--layer-decay``: the heads and the top layer learn at the full rate, each layer below at
    ``decay`` times the one above, the embeddings below the lowest layer; 1 leaves one rate."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from tools.train_reader import parameter_groups

    class Tiny(torch.nn.Module):  # the reader's shape (tools.train_reader.reader_model), two layers
        def __init__(self) -> None:
            super().__init__()
            config = BertConfig(
                vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16
            )
            self.inner = BertForSequenceClassification(config)
            self.span = torch.nn.Linear(8, 2)

    model = Tiny()
    rate = {id(p): g["lr"] for g in parameter_groups(model, 1.0, 0.5) for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(rate) == len(named)
    assert rate[id(named["span.weight"])] == rate[id(named["inner.classifier.weight"])] == 1.0
    assert rate[id(named["inner.bert.encoder.layer.1.attention.self.query.weight"])] == 1.0
    assert rate[id(named["inner.bert.encoder.layer.0.attention.self.query.weight"])] == 0.5
    assert rate[id(named["inner.bert.embeddings.word_embeddings.weight"])] == 0.25
    assert [g["lr"] for g in parameter_groups(model, 1.0, 1.0)] == [1.0]


def _wordnet_folder(tmp_path: Path) -> Path:
    """A WordNet dict folder of four synsets, in the database's own line format."""
    folder = tmp_path / "dict"
    folder.mkdir()
    licence = "  1 This software and database is being provided to you\n"
    (folder / "data.verb").write_text(
        licence
        + "00000001 30 v 03 launch 0 found 0 set_up 0 000 | set up or found\n"
        + "00000002 30 v 02 launch 0 plunge 0 000 | begin with vigour\n"
        + "00000003 30 v 02 launch 0 catapult 0 000 | propel with force\n",
        encoding="latin-1",
    )
    (folder / "data.noun1").write_text(
        licence + "00000004 09 n 02 study 0 survey 0 000 | a detailed critical inspection\n",
        encoding="latin-1",
    )
    (folder / "index.verb").write_text(
        licence + "launch v 3 0 3 0 00000001 00000002 00000003  \n", encoding="latin-1"
    )
    (folder / "index.noun").write_text(licence + "study n 1 0 1 0 00000004  \n", encoding="latin-1")
    return folder


def test_synonyms_come_from_the_first_senses_in_the_word_s_own_form(tmp_path: Path) -> None:
    from tools.synonyms import WordNet

    folder = _wordnet_folder(tmp_path)
    wordnet = WordNet(folder)
    assert wordnet("launched") == ["founded", "plunged"]  # a third sense, and "set_up", left out
    assert wordnet("launch") == ["found", "plunge"]
    assert wordnet("studies") == ["surveys"]
    assert wordnet("hive") == []
    assert WordNet(folder, senses=3)("launch")[-1] == "catapult"


def test_a_rewritten_question_takes_a_known_synonym_of_the_sentence_s_word_first(tmp_path: Path) -> None:
    import random

    from tools.synonyms import WordNet
    from tools.train_reader import Rewriter

    words = ["launched", "founded", "plunged", "started"]
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.9, 0.436]])  # cosines to "launched"
    plain = Rewriter(words, vectors, random.Random(1))
    with_synonyms = Rewriter(words, vectors, random.Random(1), WordNet(_wordnet_folder(tmp_path)))
    assert plain.neighbours("launched") == ["started", "founded"]
    # "plunged" is a synonym too, but of another sense than the one its cosine says the words share
    assert with_synonyms.neighbours("launched") == ["founded", "started"]


def test_the_removed_benchmark_asks_whole_then_without_the_answers(tmp_path: Path) -> None:
    from bench.removed import run_removed, table

    held_out = {
        "title": "Bees",
        "paragraphs": [
            {
                "context": "Honey bees live in colonies. The queen lays 2,000 eggs a day. Workers gather nectar.",
                "qas": [
                    {
                        "question": "How many eggs does the queen lay?",
                        "answers": [{"text": "2,000", "answer_start": 44}],
                    },
                    {
                        "question": "What do workers gather?",
                        "answers": [{"text": "nectar", "answer_start": 77}],
                    },
                    {
                        "question": "Where do bees live?",
                        "answers": [{"text": "colonies", "answer_start": 19}],
                    },
                ],
            },
            {"context": "Bees dance to show where flowers are. Big colonies split in spring.", "qas": []},
        ],
    }
    trained = {"title": "Trains", "paragraphs": [{"context": "Trains run on rails.", "qas": []}]}
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    v1.write_text(json.dumps({"data": [trained, held_out]}), encoding="utf-8")
    v2.write_text(json.dumps({"data": [trained]}), encoding="utf-8")
    settings = Settings(model="hashing", reader="off", onnx_dir=tmp_path / "models")
    report = run_removed(v1, v2, every=1, group=2, settings=settings)
    figures = report["all"]
    assert list(report["per_article"]) == ["Bees"]  # the training side is not reported
    assert figures["present"] == 3
    assert figures["removed"] == 3  # every sentence holding an answer goes, "Big colonies split" too
    removed = [r for r in report["rows"] if r.removed]
    assert all(not any(a in r.answer_text for a in r.answers) for r in removed)
    assert 0.0 <= figures["refused_removed"] <= 1.0 and figures["answered"] > 0
    assert "| Bees | 3 |" in table({k: v for k, v in report.items() if k != "rows"})


def test_written_questions_are_asked_of_their_own_training_article(tmp_path: Path) -> None:
    from bench.removed import ask_written

    trained = {
        "title": "Trains",
        "paragraphs": [
            {"context": "Trains run on rails. Steam engines burned coal to make steam.", "qas": []}
        ],
    }
    other = {"title": "Boats", "paragraphs": [{"context": "Boats float on water.", "qas": []}]}
    held_out = {"title": "Bees", "paragraphs": [{"context": "Bees make honey.", "qas": []}]}
    v1, v2 = tmp_path / "v1.json", tmp_path / "v2.json"
    v1.write_text(json.dumps({"data": [trained, other, held_out]}), encoding="utf-8")
    v2.write_text(json.dumps({"data": [trained, other]}), encoding="utf-8")
    items = [
        {"article": "Trains", "question": "What did steam engines burn?", "evidence": "burned coal"},
        {"article": "Trains", "question": "How fast were the first trains?", "evidence": None},
        {
            "article": "Bees",
            "question": "Do bees make honey?",
            "evidence": "make honey",
        },  # held out: never asked
    ]
    settings = Settings(model="hashing", reader="off", onnx_dir=tmp_path / "models")
    asked = ask_written(v1, v2, items, settings)
    assert [item["question"] for item, _, _ in asked] == [items[0]["question"], items[1]["question"]]
    (_, found, holds), (_, _, unanswered) = asked
    assert found.ranking and holds  # a one-passage article: its first passage holds the evidence
    assert not unanswered  # nothing to hold
