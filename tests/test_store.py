import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from qa.builder import BuildReport, build_index
from qa.config import Settings
from qa.encoder import BatchingEncoder, HashingEncoder
from qa.errors import IndexBusy, IndexCorrupt, IndexMismatch, IndexMissing
from qa.store import FORMAT_VERSION, BuildContent, IndexFolder, check, load_index, write_build


def test_build_writes_manifest_and_loads(built_settings: Settings) -> None:
    index = load_index(built_settings.index_dir, HashingEncoder())
    manifest = index.manifest
    assert (manifest.model.name, manifest.model.dim) == ("hashing-256", 256)
    assert set(manifest.documents) == {"solar", "bees", "trains"}
    assert manifest.splitter["passage_max_chars"] == built_settings.passage_max_chars
    assert manifest.passages == len(index.passages) == index.dense.ntotal
    assert {"corpus_fingerprint", "fingerprint", "built_at", "format_version"} <= set(manifest.to_json())
    norms = np.linalg.norm(index.passage_vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    for p in index.passages:
        assert index.documents[p.doc_id].text[p.start : p.end] == p.text


def test_other_model_or_dimension_is_refused(built_settings: Settings) -> None:
    with pytest.raises(IndexMismatch, match="built with model hashing-256 .*configured model is hashing-64"):
        load_index(built_settings.index_dir, HashingEncoder(64))


def test_an_index_of_an_earlier_format_is_built_anew(built_settings: Settings, caplog) -> None:
    manifest = IndexFolder(built_settings.index_dir).current / "manifest.json"
    earlier = json.loads(manifest.read_text(encoding="utf-8")) | {"format_version": FORMAT_VERSION - 1}
    manifest.write_text(json.dumps(earlier), encoding="utf-8")
    with pytest.raises(
        IndexMismatch, match=f"index format {FORMAT_VERSION - 1} is not {FORMAT_VERSION}; rebuild"
    ):
        load_index(built_settings.index_dir, HashingEncoder())
    with caplog.at_level("WARNING", logger="qa"):
        report = build_index(built_settings, HashingEncoder())
    assert sorted(report.documents_added) == ["bees", "solar", "trains"]
    assert "everything is built anew" in caplog.text and "rebuild it with" not in caplog.text
    assert load_index(built_settings.index_dir, HashingEncoder()).manifest.format_version == FORMAT_VERSION


def test_missing_index(small_settings: Settings) -> None:
    with pytest.raises(IndexMissing, match="qa index"):
        load_index(small_settings.index_dir)
    assert "no index" in (check(small_settings) or "")


def test_stale_after_a_corpus_edit(built_settings: Settings) -> None:
    assert check(built_settings) is None
    (built_settings.corpus_dir / "bees.txt").write_text("Bees dance to share directions.", encoding="utf-8")
    assert check(built_settings) == "the corpus changed since the index was built"


def test_rebuild_reembeds_only_what_changed(built_settings: Settings) -> None:
    encoder = HashingEncoder()
    unchanged = build_index(built_settings, encoder)
    assert unchanged.up_to_date and unchanged.texts_embedded == 0
    path = built_settings.corpus_dir / "trains.md"
    path.write_text(path.read_text().replace("300 km/h", "320 km/h"), encoding="utf-8")
    report = build_index(built_settings, encoder)
    assert report.documents_changed == ["trains"] and report.documents_unchanged == 2
    assert report.passages_removed == 1 and report.passages_added == 1
    assert report.texts_embedded == 3  # the edited passage, its edited sentence and the new word "320"
    assert len(report.removed_passage_ids) == 1 and report.removed_passage_ids[0].startswith("trains:")
    gone = [line for line in report.lines() if line.startswith("citation ids gone")]
    assert gone == [f"citation ids gone (`/passages/ID` now answers 404): {report.removed_passage_ids[0]}"]
    many = BuildReport("f" * 12, removed_passage_ids=[f"doc:{n:02d}" for n in range(25)])
    (line,) = [line for line in many.lines() if line.startswith("citation ids gone")]
    assert line.endswith(
        ": " + ", ".join(f"doc:{n:02d}" for n in range(20)) + " and 5 more"
    )  # one bounded line


def test_new_bm25_parameters_rebuild_the_keyword_index_only(built_settings: Settings) -> None:
    encoder = HashingEncoder()
    before = load_index(built_settings.index_dir, encoder)
    retuned = built_settings.model_copy(update={"bm25_k1": 1.5, "bm25_b": 0.75})
    assert check(retuned) == "the keyword-index settings changed since the index was built"
    report = build_index(retuned, encoder)
    assert not report.up_to_date and report.texts_embedded == 0 and report.documents_unchanged == 3
    after = load_index(built_settings.index_dir, encoder)
    assert after.manifest.keywords["bm25_k1"] == 1.5 and after.manifest.keywords["bm25_b"] == 0.75
    assert check(retuned) is None
    terms = ["bee"]
    assert not np.allclose(before.bm25.get_scores(terms), after.bm25.get_scores(terms))


def test_failed_build_keeps_the_previous_index(built_settings: Settings) -> None:
    before = load_index(built_settings.index_dir).fingerprint
    (built_settings.corpus_dir / "new.txt").write_text("Fresh text about volcanoes.", encoding="utf-8")

    class Exploding(HashingEncoder):
        def encode(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        build_index(built_settings, Exploding())
    assert load_index(built_settings.index_dir).fingerprint == before
    assert not list(built_settings.index_dir.glob(".tmp-*"))


def test_bad_corpus_file_fails_build_without_touching_index(built_settings: Settings) -> None:
    before = os.readlink(built_settings.index_dir / "current")
    (built_settings.corpus_dir / "bad.txt").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(Exception, match="bad.txt: not text in any encoding"):
        build_index(built_settings, HashingEncoder())
    assert os.readlink(built_settings.index_dir / "current") == before


def test_second_build_waits_or_stops_clearly(built_settings: Settings) -> None:
    from filelock import FileLock

    with FileLock(str(built_settings.index_dir / ".lock")):
        with pytest.raises(IndexBusy, match="another `qa index`"):
            build_index(built_settings, HashingEncoder(), lock_timeout=0.1)


def test_corrupt_file_is_named(built_settings: Settings) -> None:
    current = (built_settings.index_dir / "current").resolve()
    (current / "dense.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexCorrupt, match="dense.faiss"):
        load_index(built_settings.index_dir)


def test_truncated_passages_are_detected(built_settings: Settings) -> None:
    current = (built_settings.index_dir / "current").resolve()
    lines = (current / "passages.jsonl").read_text().splitlines()
    (current / "passages.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(IndexCorrupt, match="passages.jsonl"):
        load_index(built_settings.index_dir)


def test_old_builds_are_pruned(built_settings: Settings) -> None:
    for i in range(3):
        (built_settings.corpus_dir / "extra.txt").write_text(f"Version {i} of a note.", encoding="utf-8")
        build_index(built_settings, HashingEncoder())
    assert len(list((built_settings.index_dir / "builds").iterdir())) == 2
    manifest = json.loads((built_settings.index_dir / "current" / "manifest.json").read_text())
    assert "extra" in manifest["documents"]


def test_hnsw_can_be_chosen(small_settings: Settings) -> None:
    settings = small_settings.model_copy(update={"faiss_type": "hnsw"})
    build_index(settings, HashingEncoder())
    index = load_index(settings.index_dir)
    assert index.manifest.faiss["type"] == "hnsw"
    assert index.passage_vectors.shape[0] == len(index.passages)


def test_auto_switches_to_hnsw_above_the_exact_limit(small_settings: Settings) -> None:
    settings = small_settings.model_copy(update={"faiss_exact_max": 2})
    build_index(settings, HashingEncoder())
    assert load_index(settings.index_dir).manifest.faiss["type"] == "hnsw"


def test_batching_encoder_merges_concurrent_calls_and_keeps_each_result() -> None:
    class Slow(HashingEncoder):
        def __init__(self) -> None:
            super().__init__(32)
            self.calls: list[int] = []
            self.running = 0
            self.overlapped = False

        def encode(self, texts: list[str]) -> np.ndarray:
            self.running += 1
            self.overlapped |= self.running > 1
            self.calls.append(len(texts))
            time.sleep(0.02)
            self.running -= 1
            return super().encode(texts)

    inner = Slow()
    batching = BatchingEncoder(inner)
    texts = [[f"question {i}", f"word{i}"] for i in range(24)]
    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(batching.encode, texts))
    reference = HashingEncoder(32)
    for got, asked in zip(results, texts):
        np.testing.assert_allclose(got, reference.encode(asked))
    assert sum(inner.calls) == 48 and len(inner.calls) < 24, "concurrent calls share model runs"
    assert not inner.overlapped, "one model run at a time"
    np.testing.assert_allclose(batching.encode(["alone"]), reference.encode(["alone"]))  # idle again


def test_write_build_and_load_index_round_trip(built_settings: Settings, tmp_path: Path) -> None:
    """What load_index reads back is what write_build was given, file for file."""
    first = load_index(built_settings.index_dir)
    lexicon = first.lexicon
    content = BuildContent(
        manifest={k: v for k, v in first.manifest.to_json().items() if k != "files"},
        documents=list(first.documents.values()),
        passages=first.passages,
        passage_vectors=first.passage_vectors,
        sentence_vectors=first.sentence_vectors,
        sentence_map=first.sentence_map,
        word_vectors=lexicon.vectors,
        bm25=first.bm25,
        lexicon={"doc_freq": lexicon.doc_freq, "n_docs": lexicon.n_docs, "words": lexicon.words},
    )
    copy = tmp_path / "round-trip"
    folder = copy / "builds" / "copy"
    folder.mkdir(parents=True)
    write_build(folder, content)
    (copy / "current").symlink_to(folder)
    second = load_index(copy)
    assert second.documents == first.documents
    assert second.passages == first.passages
    assert np.array_equal(second.passage_vectors, first.passage_vectors)
    assert np.array_equal(second.sentence_vectors, first.sentence_vectors)
    assert np.array_equal(second.sentence_offsets, first.sentence_offsets)
    assert second.lexicon.words == lexicon.words and second.lexicon.doc_freq == lexicon.doc_freq
    assert np.array_equal(second.lexicon.vectors, lexicon.vectors)
    assert second.fingerprint == first.fingerprint
    assert second.manifest.files == first.manifest.files  # same bytes, same checksums
    terms = ["queen", "egg"]
    assert np.array_equal(second.bm25.get_scores(terms), first.bm25.get_scores(terms))
    # every checksum holds and the whole build loads (the corpus is the one it was built from)
    assert check(built_settings.model_copy(update={"index_dir": copy})) is None


def test_sentence_vectors_stored_compactly(small_settings: Settings) -> None:
    exact = small_settings.model_copy(update={"sentence_vectors": "float32"})
    build_index(exact, HashingEncoder())
    full = load_index(exact.index_dir)
    positions = list(range(len(full.passages)))
    reference = full.sentence_rows(positions)
    for dtype, bound in (("float16", 1e-3), ("int8", 1 / 127)):
        stale = check(small_settings.model_copy(update={"sentence_vectors": dtype}))
        assert stale is not None and "keyword-index settings changed" in stale
        report = build_index(small_settings.model_copy(update={"sentence_vectors": dtype}), HashingEncoder())
        assert report.texts_embedded == 0  # the vectors are reused, stored anew
        index = load_index(small_settings.index_dir)
        assert index.sentence_vectors.dtype == np.dtype(dtype)
        assert np.abs(index.sentence_rows(positions) - reference).max() <= bound
