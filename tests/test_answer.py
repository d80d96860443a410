import numpy as np
import pytest

from bench.profile import profile_stages
from qa.config import Settings
from qa.encoder import HashingEncoder
from qa.engine import Engine
from qa.evaluation.evaluate import grounding_violations
from qa.pipeline.answerability import FULL_COVERAGE, Thresholds
from qa.pipeline.fusion import SIGNALS, Weights
from qa.terms import segment_max


def engine_for(settings: Settings) -> Engine:
    engine = Engine(settings, HashingEncoder())
    engine.load()
    return engine


def test_answers_with_the_sentence_that_holds_the_fact(built_settings: Settings) -> None:
    result = engine_for(built_settings).ask("How many eggs does the queen lay each day?")
    assert result.answered and result.reason is None
    assert result.answer is not None
    assert result.answer.text == "The queen lays about 2,000 eggs a day in summer."
    assert result.citations[0].doc_id == "bees"
    assert grounding_violations(engine_for(built_settings).index, result) == 0


def test_refuses_off_topic_with_a_reason(built_settings: Settings) -> None:
    result = engine_for(built_settings).ask("Who painted the Mona Lisa?")
    assert not result.answered
    assert result.answer is None and result.citations == []
    assert result.reason and result.reason.startswith("The documents don't")
    assert "threshold" not in result.reason and "0." not in result.reason  # plain words only


def test_citations_are_ranked_and_verbatim(built_settings: Settings) -> None:
    engine = engine_for(built_settings)
    result = engine.ask("When did the Shinkansen open in Japan?", top_k=3)
    assert [c.rank for c in result.citations] == [1, 2, 3]
    assert result.citations[0].doc_id == "trains"
    assert result.citations[0].score >= result.citations[1].score
    assert grounding_violations(engine.index, result) == 0


def test_explain_reports_scores_thresholds_and_decision(built_settings: Settings) -> None:
    result = engine_for(built_settings).ask("How much does a home solar system cost?", explain=True)
    explain = result.explain
    assert explain is not None
    top = explain["candidates"][0]
    assert {"dense_rank", "bm25", "bm25_rank", "fused", "score", "coverage"} <= set(top)
    assert {s.name for s in SIGNALS} <= set(top)  # every ranking signal, read from the table
    assert top["answer_sentence"] is not None  # the first candidates are reranked
    assert explain["thresholds"]["similarity"] == 0.2
    assert explain["decision"].startswith("answered")
    assert any(s["coverage"] > 0 for s in explain["sentences"])


def test_the_decision_names_unknown_words_as_asked_and_tells_a_figure_from_its_threshold(
    built_settings: Settings,
) -> None:
    from qa.pipeline.answerability import _figure, _share

    assert (_figure(0.576, 0.58), _figure(0.58, 0.576)) == ("0.576", "0.580")
    assert (_figure(0.41, 0.58), _share(0.41, 0.58), _share(0.576, 0.58)) == ("0.41", "41%", "57.6%")
    result = engine_for(built_settings).ask("How many workers have toothache in the colony?", explain=True)
    assert result.explain is not None and not result.answered
    never_used = result.explain["decision"].rpartition("(never used in the corpus: ")[2]
    assert "toothache" in never_used.rstrip(")").split(", ")  # as asked, not the stem "toothach"


def test_a_passage_holding_every_key_word_needs_half_the_similarity(built_settings: Settings) -> None:
    assert Thresholds(0.4, 0.5).similarity_needed(FULL_COVERAGE) == 0.2
    assert Thresholds(0.4, 0.5).similarity_needed(FULL_COVERAGE - 0.01) == 0.4
    question = "Does the queen lay eggs each day in summer?"
    first = engine_for(built_settings).ask(question, explain=True)
    assert first.explain is not None
    similarity = first.explain["signals"]["similarity"]
    assert first.explain["signals"]["coverage"] >= FULL_COVERAGE
    # A threshold above this passage's similarity, but less than twice it: still answered, and said why.
    strict = built_settings.model_copy(update={"abstain_similarity": round(similarity * 1.5, 4)})
    result = engine_for(strict).ask(question, explain=True)
    assert result.answered and result.explain is not None
    assert "lowered because the passage holds the question's key words" in result.explain["decision"]
    assert result.explain["thresholds"]["similarity_needed"] == strict.abstain_similarity / 2
    stricter = built_settings.model_copy(update={"abstain_similarity": round(similarity * 2.5, 4)})
    assert not engine_for(stricter).ask(question).answered


def test_calibration_searches_thresholds_under_the_service_rule() -> None:
    from qa.evaluation.calibrate import Observation, _admitted, _arrays, rates

    observations = [
        Observation(True, "answerable", 0.3, 0.95, True, True),  # every key word: half the similarity
        Observation(True, "answerable", 0.3, 0.8, True, True),  # not every key word: the whole
        Observation(False, "near_topic", 0.5, 0.95, False, False),  # no value of the type asked for
    ]
    r = rates(observations, Thresholds(0.4, 0.5))
    assert r["answered_answerable"] == 0.5 and r["refused_unanswerable"] == 1.0
    assert [Thresholds(0.4, 0.5).admit(o.similarity, o.coverage, o.typed) for o in observations] == [
        True,
        False,
        False,
    ]
    # The grid search's vectorised rule is the service's rule, threshold for threshold.
    rng = np.random.default_rng(1)
    many = [
        Observation(bool(rng.random() < 0.5), "answerable", *rng.random(2), bool(rng.random() < 0.8), True)
        for _ in range(200)
    ]
    grid = np.array([0.0, 0.25, 0.5, 0.45, 0.9])
    t_sim, t_cov = np.meshgrid(grid, grid, indexing="ij")
    vectorised = _admitted(_arrays(many), t_sim, t_cov)
    for index in np.ndindex(t_sim.shape):
        thresholds = Thresholds(t_sim[index], t_cov[index])
        assert vectorised[index].tolist() == [
            thresholds.admit(o.similarity, o.coverage, o.typed) for o in many
        ]


def test_the_threshold_search_prefers_a_broad_optimum_to_a_spike_one_question_wide() -> None:
    from qa.evaluation.calibrate import Observation, search

    def asked(answerable: bool, coverage: float) -> Observation:
        return Observation(
            answerable, "answerable" if answerable else "near_topic", 0.5, coverage, True, True
        )

    # coverage threshold 0.21 alone: every answerable answered, 4 of 5 refused (0.90);
    # from 0.22 to 0.41: one answerable question lost (0.85); above: nothing answered
    observations = [
        asked(True, 0.21),
        *[asked(True, 0.41)] * 9,
        *[asked(False, 0.20)] * 4,
        asked(False, 0.85),
    ]
    thresholds, balanced = search(observations)
    assert 0.22 <= thresholds.coverage <= 0.41  # inside the broad region, not on the spike
    assert balanced == pytest.approx(0.85)  # the chosen setting's own balanced accuracy


def test_unknown_words_are_named_when_refusing(built_settings: Settings) -> None:
    result = engine_for(built_settings).ask("What is the warranty of solar panels in Brazil?", explain=True)
    assert result.explain is not None
    assert "brazil" in result.explain["unknown_terms"]


def test_an_acronym_asked_in_the_singular_is_found_in_its_plural(tmp_path, small_settings: Settings) -> None:
    from qa.builder import build_index
    from tests.conftest import write_corpus

    text = "# Lending\n\nMembers may borrow up to four DVDs at a time, each for one week.\n"
    settings = small_settings.model_copy(
        update={"corpus_dir": write_corpus(tmp_path / "library", {"lending.md": text})}
    )
    build_index(settings, HashingEncoder())
    result = engine_for(settings).ask("Can a member borrow a DVD?", explain=True)
    assert result.explain is not None
    assert result.explain["question_terms"] == ["member", "borrow", "dvd"]
    assert result.explain["unknown_terms"] == []  # "DVDs" of the text is "dvd" too
    assert result.explain["signals"]["coverage"] >= FULL_COVERAGE


def test_a_temperature_asked_of_a_passage_without_one_is_refused_with_what_is_missing(
    tmp_path, small_settings: Settings
) -> None:
    from qa.builder import build_index
    from tests.conftest import write_corpus

    text = (
        "# Programmes\n\nThe Eco programme takes 3 hours 40 minutes and uses 9.5 litres of water.\n\n"
        "The Intensive programme runs at 70 °C and takes 2 hours 15 minutes.\n"
    )
    settings = small_settings.model_copy(
        update={"corpus_dir": write_corpus(tmp_path / "manual", {"dishwasher.md": text})}
    )
    build_index(settings, HashingEncoder())
    engine = engine_for(settings)
    eco = engine.ask("What temperature is the Eco programme?")
    assert not eco.answered
    assert eco.reason is not None and "don't give a temperature" in eco.reason
    intensive = engine.ask("What temperature is the Intensive programme?")
    assert intensive.answer is not None and "70 °C" in intensive.answer.text


def test_cache_returns_same_answer_and_clears_on_swap(built_settings: Settings) -> None:
    engine = engine_for(built_settings)
    first = engine.ask("Where does the Shinkansen run?")
    again = engine.ask("  where does the SHINKANSEN run? ")
    assert again.cached and not first.cached
    assert again.answer == first.answer and again.question == "  where does the SHINKANSEN run? "
    engine.load()
    assert not engine.ask("Where does the Shinkansen run?").cached  # a new index version: asked anew


def test_a_full_width_question_is_answered_as_its_plain_form_and_cannot_poison_the_cache(
    built_settings: Settings,
) -> None:
    plain = "How many eggs does the queen lay each day?"
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in plain)
    engine = engine_for(built_settings)
    wide = engine.ask(full_width)
    assert wide.question == full_width and wide.answered
    after = engine.ask(plain)
    fresh = engine_for(built_settings).ask(plain)
    assert after.answered == fresh.answered and after.answer == fresh.answer


def test_segment_max_takes_each_run_and_gives_zero_to_an_empty_one() -> None:
    values = np.array([1.0, 5.0, 2.0, 7.0, 3.0], dtype=np.float32)
    assert segment_max(values, np.array([2, 0, 3])).tolist() == [5.0, 0.0, 7.0]
    assert segment_max(values[:0], np.array([0, 0])).tolist() == [0.0, 0.0]
    rows = np.array([[1.0, 9.0], [4.0, 2.0], [3.0, 3.0]])
    assert segment_max(rows, np.array([2, 1])).tolist() == [[4.0, 9.0], [3.0, 3.0]]


def test_ranking_weights_come_from_the_settings_named_in_the_signal_table(built_settings: Settings) -> None:
    settings = built_settings.model_copy(update={"dense_weight": 0.9, "rerank_weight": 0.0})
    weights = Weights.from_settings(settings)
    assert weights.of["dense"] == 0.9 and weights.of["keyword"] == settings.keyword_weight
    assert [s.name for s, _ in weights.stage("rerank")] == []  # weight 0: the stage is skipped
    engine = engine_for(settings)
    result = engine.ask("How many eggs does the queen lay each day?", explain=True)
    assert result.explain is not None
    top = result.explain["candidates"][0]
    assert top["answer_sentence"] is None and top["score"] == top["fused"]
    assert abs(top["fused"] - sum(weights.of[n] * top[n] for n in ("keyword", "dense", "sentence"))) < 1e-3


def test_one_signal_alone_runs_only_the_retriever_it_needs(built_settings: Settings) -> None:
    engine = engine_for(built_settings)
    keyword = engine.ask("queen eggs", explain=True, weights=engine.weights.only("keyword"))
    assert keyword.explain is not None
    assert all(c["dense_rank"] is None for c in keyword.explain["candidates"])
    dense = engine.ask("queen eggs", explain=True, weights=engine.weights.only("dense"))
    assert dense.explain is not None
    assert all(c["bm25_rank"] is None for c in dense.explain["candidates"])
    scores = [c["dense"] for c in dense.explain["candidates"]]
    assert scores == sorted(scores, reverse=True)  # ordered by that signal alone


def test_a_question_without_a_content_word_is_refused(built_settings: Settings) -> None:
    engine = engine_for(built_settings)
    for question in ("the", "What is it?", "???", "\x1c"):
        result = engine.ask(question)
        assert not result.answered and result.citations == [], question
        assert (
            result.reason
            == "Ask about something: the question has no word the documents could be searched for."
        )


def test_a_refusal_names_key_words_the_passage_lacks_and_speaks_of_the_scoped_document(
    built_settings: Settings,
) -> None:
    from qa.pipeline.refusal import plain_reason
    from qa.pipeline.scope import Scope

    engine = engine_for(built_settings)
    index = engine.index
    (query,) = engine.queries(["Could you get me the short article on monocrystalline wafer prices?"], index)
    top = engine.pipeline.run(engine.pipeline.work(index, query, engine.weights), until="rerank").candidates[
        0
    ]
    reason = plain_reason(index, query, top, "coverage")
    named = reason.split("doesn't mention ")[-1]
    assert reason.startswith("The documents don't say.") and "doesn't mention" in reason
    assert not {"get", "short", "article"} & set(named.rstrip(".").replace(" or ", ", ").split(", "))
    scoped = plain_reason(index, query, top, "coverage", Scope.of(["solar"]))
    assert scoped.startswith("This document doesn't say.")
    both = plain_reason(index, query, top, "coverage", Scope.of(["solar", "bees"]))
    assert both.startswith("These documents don't say.")


def test_a_question_nothing_comes_close_to_is_told_so_unless_the_passage_names_part_of_it(
    built_settings: Settings,
) -> None:
    """Below the similarity threshold, a passage that names nothing of the question is "nothing comes
    close"; one that names the train but not employees is said to lack the employees (spelt as
    the question spells it). A passage lacking no key word is said to lack a less rare word, not to
    be "about something else"."""
    from qa.pipeline.refusal import plain_reason
    from qa.pipeline.scope import Scope

    engine = engine_for(built_settings)
    index = engine.index

    def reason(question: str, scope: Scope | None = None, failed: str = "similarity") -> str:
        (query,) = engine.queries([question], index)
        work = engine.pipeline.run(engine.pipeline.work(index, query, engine.weights), until="rerank")
        return plain_reason(index, query, work.candidates[0], failed, scope)

    assert reason("How many employees does the Shinkansen have?") == (
        "The documents don't say. The closest passage, in “High-speed trains”, doesn't mention employees."
    )
    assert reason("Who is the CEO of the Shinkansen?").endswith("doesn't mention CEO.")  # as typed
    # it lacks no key word: a less rare word it lacks is named rather than "about something else"
    assert reason("When do the trains run in summer?", failed="coverage").endswith("doesn't mention summer.")
    # nor any less rare word: on the subject (the similarity passed) but holding too few of its words
    assert reason("When do the trains run?", failed="coverage").endswith(
        "holds too few of the question's words."
    )
    far = "Which colour are flamingos?"
    assert (
        reason(far) == "The documents don't seem to cover this: nothing in them comes close to the question."
    )
    assert reason(far, Scope.of(["solar"])).startswith(
        "This document doesn't seem to cover this: nothing in it"
    )
    assert reason(far, Scope.of(["solar", "bees"])).startswith("These documents don't seem to cover this")


def test_the_stage_profile_accounts_for_the_whole_question(built_settings) -> None:
    engine = Engine(built_settings, HashingEncoder(), reader=None)
    engine.load()
    report = profile_stages(
        engine, ["How many eggs does the queen lay?", "When did the Shinkansen open?"] * 3
    )
    stages = {row["stage"]: row for row in report["stages"]}
    pipeline = [d["stage"] for d in engine.pipeline.describe()]
    assert [s for s in stages if not s.startswith("of which")] == [*pipeline, "the rest of Engine.ask"]
    assert all(row["ms_per_question"] >= 0 for row in stages.values())
    embedding = stages["of which embedding (ONNX Runtime)"]["ms_per_question"]
    assert 0 < embedding <= stages["query"]["ms_per_question"]  # the encoder was found and timed
    assert "of which the reader (ONNX Runtime)" not in stages  # no reader loaded
    whole = [row["share"] for name, row in stages.items() if not name.startswith("of which")]
    assert sum(whole) == pytest.approx(1.0, abs=0.01)


def test_a_passage_without_the_number_the_question_gives_does_not_answer_it(built_settings: Settings) -> None:
    """ "1965" is as close to "1964" as a synonym is to its word, and another year: the passage on the
    Shinkansen of 1964 does not say what opened in 1965."""
    engine = engine_for(built_settings)
    held = engine.ask("Which high-speed train opened in Japan in 1964?", explain=True)
    assert held.answered and held.citations[0].doc_id == "trains"
    other = engine.ask("Which high-speed train opened in Japan in 1965?", explain=True)
    assert not other.answered and other.explain is not None
    assert other.reason is not None and other.reason.endswith("doesn't mention 1965.")
    assert "does not hold 1965" in other.explain["decision"]
    assert other.explain["signals"]["numbers_missing"] == ["1965"] and not other.explain["signals"]["typed"]


def test_an_age_held_against_the_limit_a_passage_states_is_answered_without_it(
    tmp_path, small_settings: Settings
) -> None:
    """ "My 15 year old" is held against the limit ("over 18 only"), not a thing the passage must
    name; a year the question gives still must be there."""
    from qa.builder import build_index
    from tests.conftest import write_corpus

    text = "# Sauna\n\nThe sauna is open to members over 18 only. It was refitted in 2021.\n"
    settings = small_settings.model_copy(
        update={"corpus_dir": write_corpus(tmp_path / "club", {"sauna.md": text})}
    )
    build_index(settings, HashingEncoder())
    engine = engine_for(settings)
    teenager = engine.ask("Can my 15 year old use the sauna?", explain=True)
    assert teenager.explain is not None and teenager.explain["signals"]["numbers_missing"] == []
    assert teenager.answer is not None and "over 18" in teenager.answer.text
    refit = engine.ask("Was the sauna refitted in 2019?", explain=True)
    assert not refit.answered and refit.reason is not None and refit.reason.endswith("doesn't mention 2019.")


def test_a_refusal_names_the_measure_asked_for(tmp_path, small_settings: Settings) -> None:
    from qa.builder import build_index
    from tests.conftest import write_corpus

    text = "# Sauna\n\nThe sauna is open to members only. Bring your own towel to the sauna.\n"
    settings = small_settings.model_copy(
        update={"corpus_dir": write_corpus(tmp_path / "club", {"sauna.md": text})}
    )
    build_index(settings, HashingEncoder())
    result = engine_for(settings).ask("How old must members be to use the sauna?")
    assert not result.answered
    assert result.reason is not None and "don't give an age for this" in result.reason
