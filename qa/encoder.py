"""Encoders turn texts into L2-normalised float32 vectors, so inner product is cosine similarity."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.batching import Batcher
from qa.config import Settings
from qa.errors import QAError

log = logging.getLogger(__name__)


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
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        try:
            # Weights are never fetched at run time (the model ships as a package directory): local
            # files only, asked of the loader, not set for the whole process.
            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
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


SPLIT_MIN = 4  # short texts that justify a run of their own (each run has a fixed cost)
# Calls with fewer texts (a request batch: at most about 64) are tokenized in the calling thread;
# a build's calls (8 × QA_ENCODE_BATCH_SIZE = 256 texts) use the tokenizer's thread pool.
TOKENIZE_PARALLEL_MIN = 128


class OnnxEncoder:
    """The same model run by ONNX Runtime: identical vectors (to ~1e-7), a fraction of the start-up
    time (no torch import) and of the per-question latency. Mean pooling and normalisation as the
    sentence-transformers pipeline it was exported from."""

    def __init__(self, model: str, onnx_file: Path, batch_size: int = 32, threads: int = 0) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model_dir = Path(model)
        max_length = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.no_padding()  # padding is per batch, in _run (tokenizer.json may set its own)
        options = onnxruntime.SessionOptions()
        # Threads of one run: all cores by default; 1 when several server processes share them.
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        # Idle pool threads would spin for work and take the CPU from the request threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.name = _model_id(model)
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # The tokenizer's thread pool pays off for a build's hundreds of texts; for a few questions
        # its spinning threads cost more CPU than the model (measured: a third more per question).
        if len(texts) >= TOKENIZE_PARALLEL_MIN:
            encodings = self._tokenizer.encode_batch(texts)
        else:
            encodings = [self._tokenizer.encode(text) for text in texts]
        # Longest first; a new batch starts when full or when a text is under half the batch's
        # longest, so short texts (a question's words) are not padded to a long one (the question).
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        batch: list[int] = []
        for n, i in enumerate(order):
            remaining = len(order) - n  # a separate run pays off only for several short texts
            shorter = 2 * len(encodings[i].ids) < len(encodings[batch[0]].ids) if batch else False
            if batch and (len(batch) == self.batch_size or (shorter and remaining >= SPLIT_MIN)):
                vectors[batch] = self._run([encodings[j] for j in batch])
                batch = []
            batch.append(i)
        vectors[batch] = self._run([encodings[j] for j in batch])
        return vectors

    def _run(self, encodings: list) -> np.ndarray:  # of tokenizers.Encoding
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        (hidden,) = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.ascontiguousarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


def onnx_supported(model: str) -> bool:
    """A local BERT-style sentence-transformers model with mean pooling and normalisation."""
    path = Path(model)
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError):
        return False
    return (
        modules == ["Transformer", "Pooling", "Normalize"]
        and bool(pooling.get("pooling_mode_mean_tokens"))
        and (path / "tokenizer.json").is_file()
    )


def export_bert(model: Any, output: str, onnx_file: Path, output_axes: dict[int, str]) -> None:
    """Export a BERT-style Hugging Face model to ONNX with dynamic batch and length: inputs
    input_ids, attention_mask and token_type_ids, one output (the model's attribute ``output``)."""
    import torch

    class Output(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            outputs = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return getattr(outputs, output)

    ids = torch.ones((1, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Output(model),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(onnx_file),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=[output],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                output: output_axes,
            },
            opset_version=17,
            dynamo=False,
        )


def export_onnx(model: str, onnx_file: Path) -> Path:
    """Export the transformer of a sentence-transformers directory to ONNX (needs torch, once)."""
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformer = AutoModel.from_pretrained(model, local_files_only=True).eval()
    onnx_file.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(onnx_file)
    tmp = onnx_file.with_suffix(f".tmp-{os.getpid()}")
    export_bert(transformer, "last_hidden_state", tmp, {0: "batch", 1: "tokens"})
    os.replace(tmp, onnx_file)  # atomic: a concurrent reader sees no half-written file
    return onnx_file


def _remove_orphans(onnx_file: Path) -> None:
    """Half-written exports left by a process killed while exporting (its pid is in the name)."""
    for leftover in onnx_file.parent.glob(f"{onnx_file.stem}.tmp-*"):
        pid = leftover.suffix.removeprefix(".tmp-")
        if pid.isdigit() and not _alive(int(pid)):
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def encoder_from(settings: Settings, serving: bool = False) -> Encoder:
    """The encoder the settings ask for; the ONNX export lives in ``onnx_export_dir`` (a cache folder).
    A server's workers share the cores; anything else (a build, an evaluation) uses them all."""
    threads = max(1, len(os.sched_getaffinity(0)) // settings.workers) if serving else 0
    return load_encoder(
        settings.model,
        settings.encode_batch_size,
        settings.encoder_backend,
        settings.onnx_export_dir,
        threads,
    )


def load_encoder(
    model: str,
    batch_size: int = 32,
    backend: str = "torch",
    onnx_dir: Path | None = None,
    threads: int = 0,
) -> Encoder:
    """``hashing`` (or ``hashing-<dim>``) selects the test encoder; anything else is a model, run by
    ONNX Runtime (``backend="onnx"``, exported on first use into ``onnx_dir``) or by torch."""
    if model == "hashing" or model.startswith("hashing-"):
        dim = int(model.split("-", 1)[1]) if "-" in model else 256
        return HashingEncoder(dim)
    if backend == "onnx" and onnx_dir is not None and onnx_supported(model):
        onnx_file = onnx_dir / f"{_model_id(model).replace('@', '-')}.onnx"
        try:
            if not onnx_file.is_file():
                # Once per model; said, since it takes half a minute with nothing else to show.
                log.warning(
                    "first use of %s: exporting it to ONNX Runtime into %s (once, about 30 s)",
                    model,
                    onnx_file,
                )
                export_onnx(model, onnx_file)
            return OnnxEncoder(model, onnx_file, batch_size, threads)
        except Exception as error:  # any failure to export or load: the torch path still works
            log.warning("ONNX Runtime unavailable for %s (%s); using sentence-transformers", model, error)
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
    """Merges encode() calls made at the same time by request threads into one model call
    (qa/batching.py: a call that finds the model idle runs at once, the others are merged)."""

    def __init__(self, inner: Encoder, max_batch: int = 64) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._batcher: Batcher[str] = Batcher(inner.encode, "encoder-batcher", max_batch)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._batcher(texts)  # type: ignore[no-any-return]


def serving_encoder(settings: Settings, encoder: Encoder | None = None) -> Encoder:
    """The encoder for request threads: concurrent questions share one model call."""
    encoder = encoder or encoder_from(settings, serving=True)
    return BatchingEncoder(encoder) if settings.batch_requests else encoder
