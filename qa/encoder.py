"""Encoders turn texts into L2-normalised float32 vectors, so inner product is cosine similarity."""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from qa.errors import QAError


class Encoder(Protocol):
    """What the index and the service need from an embedding model."""

    name: str  # stable id recorded in the index manifest
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dim), float32, each row of unit length."""
        ...


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from a local directory (or the local cache), offline."""

    def __init__(self, model: str, batch_size: int = 32) -> None:
        # Weights are never fetched at run time: the model ships as a package directory.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        try:
            self._model = SentenceTransformer(model, device="cpu")
        except (OSError, ValueError) as error:
            raise QAError(f"cannot load embedding model {model!r}: {error}") from error
        self.name = _model_id(model)
        self.dim = int(self._model.get_embedding_dimension() or 0)
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class HashingEncoder:
    """Deterministic bag-of-words vectors for tests: shared words decide similarity, no model needed."""

    def __init__(self, dim: int = 256) -> None:
        self.name = f"hashing-{dim}"
        self.dim = dim

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
                vectors[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0
            norm = np.linalg.norm(vectors[row])
            vectors[row] = vectors[row] / norm if norm else vectors[row]
        return vectors


def load_encoder(model: str, batch_size: int = 32) -> Encoder:
    """``hashing`` (or ``hashing-<dim>``) selects the test encoder; anything else is a model."""
    if model == "hashing" or model.startswith("hashing-"):
        dim = int(model.split("-", 1)[1]) if "-" in model else 256
        return HashingEncoder(dim)
    return SentenceTransformerEncoder(model, batch_size=batch_size)


def _model_id(model: str) -> str:
    """A name that survives moving the model directory: folder name plus a hash of its config."""
    path = Path(model)
    if not path.is_dir():
        return model
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        if (path / name).is_file():
            digest.update((path / name).read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    label = path.parent.name if path.name == "model" else path.name
    return f"{label}@{digest.hexdigest()[:12]}"


class BatchingEncoder:
    """Merges encode() calls made at the same time by request threads into one model call.

    A lone request goes straight through (no waiting window); while the model is busy, requests
    queue up and the next call takes them all. Under load this turns N small model calls into one.
    """

    def __init__(self, inner: Encoder, max_batch: int = 64) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="encoder-batcher", daemon=True)
        self._worker.start()

    def encode(self, texts: list[str]) -> np.ndarray:
        pending = _Pending(texts)
        self._queue.put(pending)
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            size = len(batch[0].texts)
            while size < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                size += len(batch[-1].texts)
            try:
                vectors = self.inner.encode([t for p in batch for t in p.texts])
            except Exception as error:  # handed to every waiting caller, which re-raises it
                for p in batch:
                    p.error = error
                    p.done.set()
                continue
            offset = 0
            for p in batch:
                p.result = vectors[offset : offset + len(p.texts)]
                offset += len(p.texts)
                p.done.set()


class _Pending:
    __slots__ = ("texts", "done", "result", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.done = threading.Event()
        self.result: np.ndarray | None = None
        self.error: Exception | None = None
