"""A build's costly stages as a Ray Data pipeline: documents fanned out to CPU tasks for
splitting, texts to a pool of actors that load the model once and embed batch after batch
(``map_batches``). Reading, vector reuse, BM25 and writing the shards stay in qa/builder.py, so a
build on Ray is the same build."""

from __future__ import annotations

import functools
import pickle
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa.builder import check_cancelled
from qa.config import Settings
from qa.corpus import Document
from qa.passages import Passage, split_document

DOCUMENTS_PER_TASK = 64


def _split_batch(batch: dict[str, np.ndarray], max_chars: int, splitter: str) -> dict[str, Any]:
    passages = [
        pickle.dumps(split_document(pickle.loads(document), max_chars, splitter))
        for document in batch["document"]
    ]
    return {"i": batch["i"], "passages": np.array(passages, dtype=object)}


class _Embed:
    """One embedding actor: the model loaded once, then a batch of texts at a time."""

    def __init__(self, settings_json: str, threads: int) -> None:
        from qa.encoder import load_encoder

        settings = Settings.model_validate_json(settings_json)
        self.encoder = load_encoder(
            settings.model,
            settings.encode_batch_size,
            settings.encoder_backend,
            settings.onnx_export_dir,
            threads,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"i": batch["i"], "vector": self.encoder.encode([str(t) for t in batch["text"]])}


@dataclass
class RayStages:
    """qa/builder.py's stages on the Ray cluster this process is connected to (qa.cluster.connect)."""

    settings: Settings
    dim: int
    actors: int = 1  # embedding actors; each takes one CPU
    threads: int = 1  # ONNX Runtime threads in each actor

    def __post_init__(self) -> None:
        import logging

        import ray.data

        # The build prints its own report; Ray Data's progress and notices would bury it.
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False

    def split(
        self, documents: list[Document], settings: Settings, progress: bool, cancel: threading.Event
    ) -> list[Passage]:
        import ray.data

        check_cancelled(cancel)
        items = [{"i": i, "document": pickle.dumps(d)} for i, d in enumerate(documents)]
        rows = (
            ray.data.from_items(items)
            .map_batches(
                functools.partial(
                    _split_batch, max_chars=settings.passage_max_chars, splitter=settings.sentence_splitter
                ),
                batch_size=DOCUMENTS_PER_TASK,
                batch_format="numpy",
                num_cpus=1,
            )
            .take_all()
        )
        check_cancelled(cancel)
        rows.sort(key=lambda row: row["i"])  # back in document order, whatever order tasks finished in
        return [p for row in rows for p in pickle.loads(row["passages"])]

    def embed(self, texts: list[str], label: str, progress: bool, cancel: threading.Event) -> np.ndarray:
        import ray.data

        check_cancelled(cancel)
        batch = max(self.settings.encode_batch_size, 1) * 8
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        dataset = ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)]).map_batches(
            _Embed,
            fn_constructor_kwargs={"settings_json": self.settings.model_dump_json(), "threads": self.threads},
            batch_size=batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=1,
        )
        for out in dataset.iter_batches(batch_size=batch, batch_format="numpy"):
            check_cancelled(cancel)  # stops between batches, like a local build
            vectors[out["i"]] = out["vector"]
        return vectors
