"""The answer-sentence model: a cross-encoder that reads a question and a sentence together and says
how likely the sentence answers it.

It is the bundled all-MiniLM-L6-v2 fine-tuned on SQuAD v2.0 (``qa/tools/train_reranker.py``),
exported to ONNX with int8 weights and shipped in ``qa/models/answer-sentence/``. ONNX Runtime runs
it; torch is not needed. Without the folder the service still answers, from the other signals, and
says so once in its log.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.errors import QAError

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).resolve().parent / "models" / "answer-sentence"


class SentenceScorer:
    """P(sentence answers question) for a batch of (question, sentence) pairs."""

    def __init__(self, folder: Path, threads: int = 0, max_length: int = 96) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model, tokenizer = folder / "model.onnx", folder / "tokenizer.json"
        if not model.is_file() or not tokenizer.is_file():
            raise QAError(f"no answer-sentence model in {folder} (model.onnx and tokenizer.json)")
        meta_file = folder / "meta.json"
        self.meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(max_length, strategy="only_second")
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.name = f"{folder.name}@{self.meta.get('seed', '?')}-{model.stat().st_size}"

    def score(self, question: str, sentences: list[str]) -> np.ndarray:
        """Probabilities in [0, 1], one per sentence."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        encodings = [self._tokenizer.encode(question, sentence) for sentence in sentences]
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        (logits,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        return (1.0 / (1.0 + np.exp(-logits.reshape(-1)))).astype(np.float32)


def scorer_from(settings: Settings, serving: bool = False) -> SentenceScorer | None:
    """The model ``QA_ANSWER_MODEL`` names; a server's workers share the cores, as the encoder's do."""
    threads = max(1, len(os.sched_getaffinity(0)) // settings.workers) if serving else 0
    return load_scorer(settings.answer_model, threads)


def load_scorer(setting: str, threads: int = 0) -> SentenceScorer | None:
    """``QA_ANSWER_MODEL``: "bundled" (the shipped model), a folder, or "off"."""
    if setting == "off":
        return None
    folder = BUNDLED if setting == "bundled" else Path(setting)
    try:
        return SentenceScorer(folder, threads)
    except Exception as error:  # a missing or unloadable model: answer from the other signals
        log.warning("answer-sentence model unavailable (%s); answering without it", error)
        return None
