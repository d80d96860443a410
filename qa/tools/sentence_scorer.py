"""An answer-sentence model made by ``train_reranker``: a cross-encoder that reads a question and a
sentence together and says how likely the sentence answers it, run by ONNX Runtime (int8 weights).

Measured and not adopted by the service (see the README, "Tried and not adopted"): this is what
``train_reranker --evaluate`` scores with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from qa.errors import QAError


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
