"""The reader: a cross-encoder that reads the question together with a candidate sentence and gives
the probability that the sentence states the answer.

Bi-encoder cosines and word coverage see that a sentence is on the question's subject; they cannot
see whether the specific fact asked for is there. The reader can: it was trained here
(qa/tools/train_reader.py, ``make answer-model``) on SQuAD articles with the answer sentences taken
out. Its int8 ONNX weights ship in ``qa/models/reader`` (docs/reader.md is its model card); ONNX
Runtime runs it, with no torch import. The service works without it (``QA_READER=off``, or the
files missing): the answer rule is then the similarity/coverage thresholds alone, and ``/readyz``
says so.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from qa.errors import QAError

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).parent / "models" / "reader"


class Reader:
    """P(sentence states the answer to the question), one ONNX Runtime call per question."""

    def __init__(self, folder: Path, threads: int = 0, max_length: int = 96) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model, tokenizer = folder / "model.onnx", folder / "tokenizer.json"
        if not model.is_file() or not tokenizer.is_file():
            raise QAError(f"no reader model in {folder} (model.onnx and tokenizer.json)")
        meta_file = folder / "meta.json"
        self.meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        self._tokenizer.enable_truncation(max_length, strategy="only_second")
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.folder = folder
        self.name = f"{folder.name}-{model.stat().st_size}"
        # The reader threshold fitted for this reader when it was made (``rule.json``, written by
        # ``qa calibrate --squad-v1 ... --default-out``); 0 (it never refuses) for one without.
        rule_file = folder / "rule.json"
        self.default_threshold = (
            float(json.loads(rule_file.read_text(encoding="utf-8"))["reader"]) if rule_file.is_file() else 0.0
        )

    def read(self, question: str, sentences: list[str]) -> np.ndarray:
        """Probabilities in [0, 1], one per sentence."""
        return self.read_pairs([(question, s) for s in sentences])

    def read_pairs(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Probabilities in [0, 1], one per (question, sentence) pair, in one model call."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        encodings = self._tokenizer.encode_batch(pairs)
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
        return (1.0 / (1.0 + np.exp(-logits.reshape(-1).astype(np.float64)))).astype(np.float32)


def load_reader(setting: str, threads: int = 0) -> Reader | None:
    """The reader the setting names: ``bundled`` (the weights shipped in the package), a folder, or
    ``off``. None when off or when its files are missing (logged: the service answers without it)."""
    if setting == "off":
        return None
    folder = BUNDLED if setting == "bundled" else Path(setting)
    try:
        return Reader(folder, threads)
    except QAError as error:
        log.warning("%s; answering without the reader", error)
        return None
