"""The reader: a cross-encoder that reads the question together with a candidate sentence and gives
the probability that the sentence states the answer.

Bi-encoder cosines and word coverage see that a sentence is on the question's subject; they cannot
see whether the specific fact asked for is there. The reader can: it was trained here
(tools/train_reader.py, ``make answer-model``) on SQuAD articles with the answer sentences taken
out. Its int8 ONNX weights ship in ``qa/models/reader`` (docs/reader.md is its model card); ONNX
Runtime runs it, with no torch import. The service works without it (``QA_READER=off``, or the
files missing): the answer rule is then the similarity/coverage thresholds alone, and ``/readyz``
says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import QAError
from qa.pipeline.answerability import FACT, JUDGES
from qa.pipeline.confidence import CONFIDENCE_INPUTS, RELEVANCE_INPUTS, Calibrated, Logistic

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).parent / "models" / "reader"


class Reader:
    """P(sentence states the answer to the question), one ONNX Runtime call per question."""

    def __init__(self, folder: Path, threads: int = 0) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model, tokenizer = folder / "model.onnx", folder / "tokenizer.json"
        if not model.is_file() or not tokenizer.is_file():
            raise QAError(f"no reader model in {folder} (model.onnx and tokenizer.json)")
        meta_file = folder / "meta.json"
        self.meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        self._tokenizer = Tokenizer.from_file(str(tokenizer))
        # as long as it was trained to read (96 tokens; 128 for a reader that reads the context)
        self._tokenizer.enable_truncation(int(self.meta.get("max_length", 96)), strategy="only_second")
        # A reader trained with the sentence before (``--context``) reads each sentence with it.
        self.reads_context = bool(self.meta.get("context"))
        self._tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        # A reader trained with its span head (``start_logits``, ``end_logits``) also points at the
        # short answer inside the sentence; an older one gives the probability alone.
        self.points = {o.name for o in self._session.get_outputs()} >= {"start_logits", "end_logits"}
        self.folder = folder
        # what a calibration stored in an index names: the weights' digest, since a retrained reader
        # of the same shape has the same size, and must not inherit the thresholds fitted for another
        with model.open("rb") as weights:
            digest = hashlib.file_digest(weights, "sha256").hexdigest()
        self.name = f"{folder.name}@{digest[:12]}"
        # The reader threshold fitted for this reader when it was made (``rule.json``, written by
        # ``qa calibrate --squad-v1 ... --default-out``); 0 (it never refuses) for one without.
        rule_file = folder / "rule.json"
        rule = json.loads(rule_file.read_text(encoding="utf-8")) if rule_file.is_file() else {}
        self.default_threshold = float(rule.get("reader", 0.0))
        # and which questions it judges with it: fact questions, or every question
        self.default_judges = rule.get("judges", FACT)
        if self.default_judges not in JUDGES:
            raise QAError(f'{rule_file}: "judges" must be one of {", ".join(JUDGES)}')
        # and the probability at which it answers a question the coverage threshold refuses (none: never)
        overrule = rule.get("overrule")
        if overrule is not None and (
            isinstance(overrule, bool) or not isinstance(overrule, int | float) or not 0 <= overrule <= 1
        ):
            raise QAError(f'{rule_file}: "overrule" must be a probability between 0 and 1, or null')
        self.default_overrule: float | None = None if overrule is None else float(overrule)
        # and the answers' confidence and citations' relevance fitted with it (same command)
        self.default_calibrated = Calibrated(
            Logistic.from_json(rule.get("confidence"), CONFIDENCE_INPUTS),
            Logistic.from_json(rule.get("relevance"), RELEVANCE_INPUTS),
            float((rule.get("relevance") or {}).get("floor", 0.0)),
        )
        # Not behind the request batcher: dynamic int8 quantisation scales activations by the whole
        # call, so a sentence's probability would depend on the other questions read with it (up to
        # 0.14 measured); static scales, which would not, cost accuracy (docs/reader.md).

    def read(self, question: str, sentences: list[str]) -> np.ndarray:
        """Probabilities in [0, 1], one per sentence."""
        return np.array(
            [r.probability for r in self.readings([(question, s) for s in sentences])], dtype=np.float32
        )

    def readings(self, pairs: list[tuple[str, str]], contexts: list[str] | None = None) -> list[Reading]:
        """Per (question, sentence) pair, in one model call: the probability that the sentence states
        the answer and, from a reader that points, the short answer's characters in the sentence.
        ``contexts``: the sentence before each (read only by a reader trained with it)."""
        if not pairs:
            return []
        if self.reads_context and contexts is not None:
            read = [(q, second_text(s, c)) for (q, s), c in zip(pairs, contexts)]
        else:
            read = list(pairs)
        encodings = self._tokenizer.encode_batch(read)
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        wanted = ["logits", "start_logits", "end_logits"] if self.points else ["logits"]
        outputs = self._session.run(
            wanted, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        probabilities = 1.0 / (1.0 + np.exp(-outputs[0].reshape(-1).astype(np.float64)))
        result = []
        for row, e in enumerate(encodings):
            sentence = pairs[row][1]
            short = _span(e, outputs[1][row], outputs[2][row], len(sentence)) if self.points else None
            if short is not None:
                short = _whole_words(pairs[row][1], *short)
            result.append(Reading(float(probabilities[row]), short))
        return result


@dataclass(frozen=True)
class Reading:
    probability: float  # that the sentence states the answer
    short: tuple[int, int] | None = None  # the short answer's characters in the sentence


# A short answer is at most this many tokens: SQuAD v1.1 dev's first answers are 3 tokens at the median,
# 12 at the 95th percentile, and 97.9% are 16 or fewer (measured on its 10,570 questions).
MAX_SHORT_TOKENS = 16


def second_text(sentence: str, context: str) -> str:
    """What a reader trained with the context reads with the question: the sentence, then the one
    before it after a separator (the sentence first, so truncation cuts the context and the
    sentence's characters keep their offsets). The training builds the same text."""
    return f"{sentence} [SEP] {context}" if context else sentence


def _span(
    encoding: Any, start_logits: np.ndarray, end_logits: np.ndarray, limit: int
) -> tuple[int, int] | None:
    """The best start ≤ end pair of the sentence's tokens (start + end logit), as characters of
    the sentence (its first ``limit`` characters: never in the context read after it)."""
    tokens = np.array(
        [
            t
            for t, sid in enumerate(encoding.sequence_ids)
            if sid == 1 and encoding.offsets[t][0] < encoding.offsets[t][1] <= limit
        ]
    )
    if not len(tokens):
        return None
    starts, ends = start_logits[tokens], end_logits[tokens]
    pair = starts[:, None] + ends[None, :]
    gap = tokens[None, :] - tokens[:, None]
    pair[(gap < 0) | (gap >= MAX_SHORT_TOKENS)] = -np.inf
    i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
    return encoding.offsets[tokens[i]][0], encoding.offsets[tokens[j]][1]


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """The span widened to whole words: a word piece ("##ers") is not an answer."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
        end += 1
    return start, end


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
