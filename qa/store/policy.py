"""Whether a build can serve this configuration: built with the configured model, current with the
corpus and the splitter and keyword settings, sound on disk; and the calibration stored for a model."""

from __future__ import annotations

from typing import Any

from qa.config import Settings
from qa.corpus import corpus_fingerprint
from qa.encoder import Encoder
from qa.errors import IndexMismatch, QAError
from qa.store.folder import IndexFolder
from qa.store.format import Manifest
from qa.terms import ACRONYM_PLURALS, STEMMER_LANGUAGE


def splitter_settings(settings: Settings) -> dict[str, object]:
    return {
        "passage_max_chars": settings.passage_max_chars,
        "passage_context": settings.passage_context,
        "sentences": settings.sentence_splitter,
        "version": 1,
    }


def keyword_settings(settings: Settings) -> dict[str, object]:
    """How passages become keyword-index terms and BM25 scores; a change means a rebuild."""
    return {
        "stemmer": STEMMER_LANGUAGE,
        "acronym_plurals": ACRONYM_PLURALS,
        "stopwords": "nltk-english",
        "bm25_k1": settings.bm25_k1,
        "bm25_b": settings.bm25_b,
        "max_word_vectors": settings.max_word_vectors,
        "sentence_vectors": settings.sentence_vectors,
    }


def check_compatible(manifest: Manifest, encoder: Encoder) -> None:
    built = manifest.model
    if built.name != encoder.name or built.dim != encoder.dim:
        raise IndexMismatch(
            f"index was built with model {built.name} (dimension {built.dim}), but the "
            f"configured model is {encoder.name} (dimension {encoder.dim}); rebuild with `qa index`"
        )


def staleness(settings: Settings, manifest: Manifest, memo: dict | None = None) -> str | None:
    """Why the index no longer matches the corpus and settings, or None when it is current."""
    try:
        fingerprint = corpus_fingerprint(settings.corpus_dir, memo)
    except QAError as error:
        return str(error)
    if fingerprint != manifest.corpus_fingerprint:
        return "the corpus changed since the index was built"
    if manifest.splitter != splitter_settings(settings):
        return "the splitter settings changed since the index was built"
    if manifest.keywords != keyword_settings(settings):
        return "the keyword-index settings changed since the index was built"
    return None


def check(settings: Settings) -> str | None:
    """None when the index is present, sound and current, else a one-line reason.

    Sound means what the server would accept, and more: every file's size and checksum as the
    manifest recorded them (a truncated or hand-edited file), then a full load with its checks.
    """
    from qa.store.loader import load_index

    folder = IndexFolder(settings.index_dir)
    try:
        manifest = folder.read_manifest()
        folder.verify_checksums(manifest)
        load_index(settings.index_dir)
    except QAError as error:
        return str(error)
    return staleness(settings, manifest)


def calibration_for(manifest: Manifest, model: str) -> dict[str, Any] | None:
    """The stored calibration when it was fitted for ``model`` (thresholds are a property of the
    model's similarities: another model's are not valid), else None."""
    calibration = manifest.calibration
    return calibration.model_dump() if calibration and calibration.model == model else None
