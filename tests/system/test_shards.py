"""Sharded builds searched in one process: the same answers as one index, incremental per shard,
checked like any index."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from bench.server import free_port
from qa.builder import build_index
from qa.cli import app
from qa.engine import Engine
from qa.errors import IndexCorrupt, ScopeEmpty
from qa.pipeline.query import Query
from qa.pipeline.scope import Scope
from qa.shards import merge, search_shard
from qa.store import check, load_index
from tests.conftest import QUESTIONS, top, write_corpus


def test_sharded_search_answers_every_evaluation_question_as_one_index(sharded) -> None:
    _, one, three = sharded
    assert three.index.shard_count == 3 and len(three.index.shards) == 3
    assert all(shard.passages for shard in three.index.shards)  # each shard holds part of the corpus
    assert {p.passage_id for p in three.index.passages} == {p.passage_id for p in one.index.passages}
    spread = 0
    for question in QUESTIONS:
        single, sharded_result = one.ask(question, use_cache=False), three.ask(question, use_cache=False)
        assert top(sharded_result) == top(single), question
        owners = {
            three.index.shards.index(s)
            for c in sharded_result.ranking[:3]
            for s in three.index.shards
            if c.passage_id in s.positions
        }
        spread += len(owners) > 1
    assert spread > len(QUESTIONS) // 4  # the citations of many questions come from several shards


def test_a_sharded_build_is_incremental_per_shard(sharded, real_encoder) -> None:
    settings, _, three = sharded
    (settings.corpus_dir / "bees.txt").write_text("Bees make honey from nectar.\n", encoding="utf-8")
    try:
        report = build_index(settings, real_encoder)  # the shard count is kept
        index = load_index(settings.index_dir)
        assert index.shard_count == 3 and report.documents_changed == ["bees"]
        assert 0 < report.texts_embedded <= 8  # the new passage, its sentence and new words only
        old = {p.passage_id for s in three.index.shards for p in s.passages if p.doc_id != "bees"}
        assert old <= {p.passage_id for p in index.passages}
    finally:
        write_corpus(settings.corpus_dir)
        build_index(settings, real_encoder)


# The sharded layout with the fake encoder: fast, no model.


def _many_documents(settings) -> None:
    for n in range(12):
        (settings.corpus_dir / f"note{n}.md").write_text(
            f"---\ntitle: Note {n}\n---\n\nThe note number {n} is about harbour {n} and its {n} cranes.\n",
            encoding="utf-8",
        )


def test_a_sharded_build_is_checked_like_any_index(small_settings, fake_encoder) -> None:
    _many_documents(small_settings)
    report = build_index(small_settings.model_copy(update={"shards": 3}), fake_encoder)
    assert report.shards == 3 and "into 3 shards" in "\n".join(report.lines())
    index = load_index(small_settings.index_dir)
    assert index.shard_count == 3 and sum(len(s.passages) for s in index.shards) == len(index.passages)
    assert sorted(d for s in index.shards for d in s.documents) == sorted(index.documents)
    assert check(small_settings) is None
    # A rebuild without --shards keeps the count; one shard goes back to the single layout.
    (small_settings.corpus_dir / "note0.md").write_text(
        "---\ntitle: Note 0\n---\n\nChanged.\n", encoding="utf-8"
    )
    assert build_index(small_settings, fake_encoder).shards == 3
    build_index(small_settings.model_copy(update={"shards": 1}), fake_encoder)
    single = load_index(small_settings.index_dir)
    assert single.shard_count == 1 and not single.shards and single.bm25 is not None


def test_a_damaged_shard_is_named(small_settings, fake_encoder) -> None:
    _many_documents(small_settings)
    build_index(small_settings.model_copy(update={"shards": 2}), fake_encoder)
    current = (small_settings.index_dir / "current").resolve()
    (current / "shards" / "01" / "sentences.npy").write_bytes(b"not numpy")
    with pytest.raises(IndexCorrupt, match="shards/01/sentences.npy"):
        load_index(small_settings.index_dir)
    assert "shards/01/sentences.npy" in (check(small_settings) or "")


def test_keyword_scores_in_a_shard_are_those_of_the_whole_corpus(small_settings, fake_encoder) -> None:
    _many_documents(small_settings)
    build_index(small_settings.model_copy(update={"shards": 1}), fake_encoder)
    one = load_index(small_settings.index_dir)
    build_index(small_settings.model_copy(update={"shards": 3}), fake_encoder)
    three = load_index(small_settings.index_dir)
    terms = ["harbour", "crane", "note"]
    whole = dict(zip((p.passage_id for p in one.passages), one.bm25.get_scores(terms)))
    for shard in three.shards:
        part = dict(zip((p.passage_id for p in shard.passages), shard.bm25.get_scores(terms)))
        assert part == pytest.approx({k: whole[k] for k in part})


def test_a_scoped_question_on_shards_answers_as_on_one_index(small_settings, fake_encoder) -> None:
    _many_documents(small_settings)
    build_index(small_settings.model_copy(update={"shards": 1}), fake_encoder)
    one = Engine(small_settings, fake_encoder, load_index(small_settings.index_dir))
    build_index(small_settings.model_copy(update={"shards": 3}), fake_encoder)
    three = Engine(small_settings, fake_encoder, load_index(small_settings.index_dir))
    scope = Scope.of(["note3", "note7", "solar"])
    for question in ("How many cranes has harbour 7?", "What does a home system cost?"):
        a = one.ask(question, scope=scope, use_cache=False)
        b = three.ask(question, scope=scope, use_cache=False)
        assert top(a) == top(b) and {c.doc_id for c in b.ranking} <= {"note3", "note7", "solar"}
    with pytest.raises(ScopeEmpty):
        three.ask("cranes?", scope=Scope.of(["no-such-document"]))


def test_shards_send_their_candidates_cosines_not_their_vectors(small_settings, fake_encoder) -> None:
    _many_documents(small_settings)
    build_index(small_settings.model_copy(update={"shards": 3}), fake_encoder)
    index = load_index(small_settings.index_dir)
    vector = fake_encoder.encode(["How many cranes has harbour 7?"])[0]
    query = Query("How many cranes has harbour 7?", vector, ["crane", "harbour"])
    pools = [search_shard(shard, query, 5, {"dense", "bm25"}, None) for shard in index.shards]
    for shard, pool in zip(index.shards, pools):
        rows = [shard.positions[pid] for pid in pool.passage_ids]
        assert pool.dense.shape == (len(rows),) and pool.sentences.ndim == 1
        np.testing.assert_allclose(pool.dense, shard.passage_vectors[rows] @ vector, atol=1e-6)
        np.testing.assert_allclose(pool.sentences, shard.sentence_rows(rows) @ vector, atol=1e-6)
    merged = merge(index, query, pools, 5, {"dense", "bm25"})
    assert merged is not None
    view, pool = merged
    assert view.passage_vectors.size == 0 and view.sentence_vectors.size == 0
    # the view answers with the shards' cosines, each passage's and sentence's own, for its own
    # question only
    assert len(view.passages) > 1
    for position, passage in enumerate(view.passages):
        owner = next(s for s in index.shards if passage.passage_id in s.positions)
        row = owner.positions[passage.passage_id]
        np.testing.assert_allclose(
            view.passage_similarities([position], vector), owner.passage_vectors[[row]] @ vector, atol=1e-6
        )
        np.testing.assert_allclose(
            view.sentence_similarities([position], vector), owner.sentence_rows([row]) @ vector, atol=1e-6
        )
    with pytest.raises(ValueError, match="its own question"):
        view.passage_similarities(pool.positions, -vector)


def test_a_cluster_that_is_not_there_is_a_clear_error(small_settings) -> None:
    result = CliRunner().invoke(
        app,
        [
            "index",
            "--corpus",
            str(small_settings.corpus_dir),
            "--index",
            str(small_settings.index_dir),
            "--ray",
            f"127.0.0.1:{free_port()}",
        ],
        env={"QA_MODEL": "hashing"},
    )
    assert result.exit_code == 1 and "no Ray cluster at 127.0.0.1:" in result.output
    assert not (small_settings.index_dir / "current").exists()


def test_serving_on_ray_refuses_the_options_of_one_machine(small_settings) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--index", str(small_settings.index_dir), "--ray", "auto", "--watch"],
        env={"QA_MODEL": "hashing"},
    )
    assert result.exit_code == 2 and "--watch and --workers do not apply" in result.output
