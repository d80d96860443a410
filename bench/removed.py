"""SQuAD v1.1 dev articles, each asked as a one-document corpus twice: whole, and with the sentences
that hold the question's answer deleted.

With the article whole, a question answered with its gold answer in the first citation is a hit.
With every sentence that holds a gold answer deleted, the question is still about the article's
subject but its answer is not there: a refusal is right. Questions are taken in groups (``group``):
the answer sentences of a whole group are deleted at once and the group asked of that document, so a
document is built once per group, not per question. A question whose answer text still occurs in
the document after the deletion is dropped from the removed side.

The articles of v1.1 dev that are also in v2.0 dev (35) are the reader's training side
(tools/train_reader.py); the other 13 are held out, and only their figures are reported.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.squad import answer_scores, load_squad
from qa.builder import build_index
from qa.config import Settings
from qa.encoder import encoder_from
from qa.engine import Engine
from qa.errors import QAError
from qa.evaluation.calibrate import binned


@dataclass(frozen=True)
class SquadSplit:
    train: list[dict[str, Any]]  # v1.1 articles also in v2.0 dev
    held_out: list[dict[str, Any]]  # the other v1.1 articles
    train_v2: list[dict[str, Any]]  # the training articles as v2.0 has them (unanswerable questions)


def squad_v2_beside(squad_v1: Path) -> Path:
    """Where SQuAD v2.0 dev lies in the benchmarks folder, beside v1.1's."""
    return squad_v1.resolve().parent.parent / "squad-v2.0-dev" / "dev-v2.0.json.gz"


def load_split(squad_v1: Path, squad_v2: Path) -> SquadSplit:
    v1, v2 = load_squad(squad_v1), load_squad(squad_v2)
    titles = {a["title"] for a in v2}
    return SquadSplit(
        train=[a for a in v1 if a["title"] in titles],
        held_out=[a for a in v1 if a["title"] not in titles],
        train_v2=v2,
    )


def _squash(text: str) -> str:
    return " ".join(text.split())


def held_out_titles(squad_v1: Path) -> set[str]:
    """The v1.1 dev articles the reader never trained on (not in v2.0 dev)."""
    split = load_split(squad_v1, squad_v2_beside(squad_v1))
    return {a["title"] for a in split.held_out}


@dataclass(frozen=True)
class ArticleSentence:
    paragraph: int
    start: int  # offsets in the paragraph's context
    end: int
    text: str

    def holds(self, answers: list[str]) -> bool:
        squashed = _squash(self.text)
        return any(a in squashed for a in answers)


def article_sentences(article: dict[str, Any]) -> list[ArticleSentence]:
    """Every sentence of every paragraph, split as the service splits them."""
    from qa.passages import sentence_spans

    result = []
    for number, paragraph in enumerate(article["paragraphs"]):
        context = paragraph["context"]
        for start, end in sentence_spans(context, 0, len(context)):
            result.append(ArticleSentence(number, start, end, context[start:end]))
    return result


def gold_answers(qa: dict[str, Any]) -> list[str]:
    return sorted({a for a in (_squash(x["text"]) for x in qa.get("answers", [])) if a})


def _document(article: dict[str, Any], sentences: list[ArticleSentence], deleted: set[int]) -> str:
    """The article as Markdown, paragraphs separated by blank lines, without the deleted sentences."""
    paragraphs: list[list[str]] = [[] for _ in article["paragraphs"]]
    for i, s in enumerate(sentences):
        if i not in deleted:
            paragraphs[s.paragraph].append(_squash(s.text))
    title = article["title"].replace("_", " ")
    body = "\n\n".join(" ".join(p) for p in paragraphs if p)
    return f"---\nid: article\ntitle: {title!r}\n---\n\n{body}\n"


@dataclass
class Asked:
    article: str
    question: str
    answers: list[str]
    removed: bool  # asked of the document without its answer sentences
    answered: bool = False
    hit: bool = False  # answered, and the first citation holds a gold answer
    ranked: bool = False  # the first passage of the ranking holds a gold answer, answered or not
    sentence: bool = False  # the answer span holds a gold answer
    answer_text: str = ""
    short: str | None = None  # the short answer, when one was given
    short_em: float = 0.0  # its exact match and F1 against the gold answers (SQuAD's scoring)
    short_f1: float = 0.0
    signals: dict[str, float] | None = None
    confidence: float | None = None  # the answer's (answer.confidence), when answered
    # per citation of the ranking: its relevance inputs and whether it holds a gold answer
    citations: tuple[tuple[tuple[float, float, float], bool], ...] = ()


def questions_of(article: dict[str, Any], every: int) -> list[dict[str, Any]]:
    items = [qa for p in article["paragraphs"] for qa in p["qas"] if gold_answers(qa)]
    return items[::every]


def _article_engine(root: Path, base: Settings) -> Engine:
    """An engine over ``root``/corpus, where one article at a time is written and indexed."""
    (root / "corpus").mkdir(parents=True, exist_ok=True)
    settings = base.model_copy(
        update={
            "corpus_dir": root / "corpus",
            "index_dir": root / "index",
            "onnx_dir": base.onnx_export_dir,
            "cache_size": 0,
        }
    )
    return Engine(settings, encoder_from(settings))


def _index_article(engine: Engine, text: str) -> None:
    corpus = engine.settings.corpus_dir
    for old in corpus.glob("*.md"):
        old.unlink()
    (corpus / "article.md").write_text(text, encoding="utf-8")
    build_index(engine.settings, engine.build_encoder)
    engine.load()


def ask_written(
    squad_v1: Path, squad_v2: Path, items: list[dict[str, Any]], settings: Settings | None = None
) -> list[tuple[dict[str, Any], Any, bool]]:
    """Questions written about the training articles (``{"article", "question", "evidence"}``,
    tools/written_questions.jsonl), each asked of its whole article as a one-document corpus:
    (item, result, whether the first passage of the ranking holds its evidence)."""
    by_title: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_title.setdefault(item["article"], []).append(item)
    asked = []
    with tempfile.TemporaryDirectory(prefix="qa-written-") as tmp:
        engine = _article_engine(Path(tmp), settings or Settings())
        for article in load_split(squad_v1, squad_v2).train:
            if article["title"] not in by_title:
                continue
            _index_article(engine, _document(article, article_sentences(article), set()))
            for item in by_title[article["title"]]:
                result = engine.ask(item["question"], 1, use_cache=False, read_all=True)
                first = _squash(result.ranking[0].text) if result.ranking else ""
                evidence = item.get("evidence")
                asked.append((item, result, bool(evidence) and _squash(str(evidence)) in first))
    return asked


def ask_article(engine: Engine, article: dict[str, Any], every: int, group: int, seed: int) -> list[Asked]:
    """Ask one article's questions (every ``every``-th) whole and, in groups, with answers removed."""
    sentences = article_sentences(article)
    _index_article(engine, _document(article, sentences, set()))
    items = questions_of(article, every)
    results = [_asked(engine, article, qa, removed=False) for qa in items]
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)  # groups mix the article's parts
    for offset in range(0, len(order), group):
        members = [items[i] for i in order[offset : offset + group]]
        deleted = {i for i, s in enumerate(sentences) for qa in members if s.holds(gold_answers(qa))}
        text = _document(article, sentences, deleted)
        _index_article(engine, text)
        for qa in members:
            if any(a in text for a in gold_answers(qa)):
                continue  # the answer text occurs elsewhere: not a question the document cannot answer
            results.append(_asked(engine, article, qa, removed=True))
    return results


def _asked(engine: Engine, article: dict[str, Any], qa: dict[str, Any], removed: bool) -> Asked:
    answers = gold_answers(qa)
    result = engine.ask(qa["question"], 3, use_cache=False, read_all=True)  # the reader's signals recorded
    first = result.ranking[0].text if result.ranking else ""
    asked = Asked(article["title"], qa["question"], answers, removed, answered=result.answered)
    asked.ranked = any(a in _squash(first) for a in answers)
    asked.hit = result.answered and asked.ranked
    if result.answer is not None:
        asked.answer_text = result.answer.text
        asked.confidence = result.answer.confidence
        asked.sentence = any(a in _squash(result.answer.text) for a in answers)
        if result.answer.short is not None:
            asked.short = result.answer.short.text
            asked.short_em, asked.short_f1 = answer_scores(asked.short, [a["text"] for a in qa["answers"]])
    asked.signals = dict(result.signals)
    asked.citations = tuple(
        (inputs, not removed and any(a in _squash(c.text) for a in answers))
        for inputs, c in zip(result.relevance_inputs, result.ranking)
    )
    return asked


def summarise(rows: list[Asked]) -> dict[str, float]:
    present = [r for r in rows if not r.removed]
    removed = [r for r in rows if r.removed]
    n = max(len(present), 1)
    figures: dict[str, float] = {
        "hit@1": sum(r.hit for r in present) / n,
        "ranked@1": sum(r.ranked for r in present) / n,
        "answer_sentence": sum(r.sentence for r in present) / n,
        "answered": sum(r.answered for r in present) / n,
    }
    shorts = [r for r in present if r.short is not None]
    figures["short_given"] = len(shorts) / n
    figures["short_exact_match"] = sum(r.short_em for r in shorts) / max(len(shorts), 1)
    figures["short_f1"] = sum(r.short_f1 for r in shorts) / max(len(shorts), 1)
    figures["present"] = len(present)
    figures["removed"] = len(removed)
    figures["refused_removed"] = sum(not r.answered for r in removed) / max(len(removed), 1)
    return figures


def run_removed(
    squad_v1: Path,
    squad_v2: Path,
    *,
    articles: str = "held-out",
    every: int = 10,
    group: int = 8,
    seed: int = 13,
    work_dir: Path | None = None,
    settings: Settings | None = None,
    failures: int = 5,
) -> dict[str, Any]:
    split = load_split(squad_v1, squad_v2)
    chosen = {"held-out": split.held_out, "train": split.train, "all": split.train + split.held_out}.get(
        articles
    )
    if chosen is None:
        raise QAError(f"--articles must be held-out, train or all, not {articles!r}")
    with tempfile.TemporaryDirectory(prefix="qa-removed-") as tmp:
        engine = _article_engine(work_dir or Path(tmp), settings or Settings())
        rows: list[Asked] = []
        per_article = {}
        for article in chosen:
            asked = ask_article(engine, article, every, group, seed)
            rows.extend(asked)
            per_article[article["title"]] = summarise(asked)
    examples = [
        {"article": r.article, "question": r.question, "answer": r.answer_text}
        for r in rows
        if r.removed and r.answered
    ]
    random.Random(seed).shuffle(examples)
    given = [r for r in rows if r.confidence is not None]
    return {
        "articles": articles,
        "every": every,
        "group": group,
        "all": summarise(rows),
        "per_article": per_article,
        "answered_removed_examples": examples[:failures],
        # answer.confidence against what came true, over every answer given (one to a question whose
        # answer was removed is wrong): on held-out articles, questions the fit never saw
        "confidence_reliability": binned(
            np.array([r.confidence for r in given]), np.array([r.hit for r in given], dtype=float)
        ),
        "rows": rows,
    }


_ROW = (
    "| {name} | {present} | {hit@1:.3f} | {answered:.3f} | {answer_sentence:.3f} | {short_given:.3f} | "
    "{short_exact_match:.3f} | {short_f1:.3f} | {removed} | {refused_removed:.3f} |"
)


def table(report: dict[str, Any]) -> str:
    lines = [
        f"SQuAD v1.1 dev, {report['articles']} articles, one article a corpus; every {report['every']}th "
        f"question; answers removed in groups of {report['group']}",
        "answer present: hit@1 (answered and the first citation holds the answer; a refusal is a miss), "
        "answered, answer sentence, short answer given, its exact match and F1 (SQuAD's scoring, over the "
        "short answers given); answer removed: refused (right)",
        "",
        "| article | present | hit@1 | answered | answer sentence | short given | short EM | short F1 | removed | refused |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, figures in report["per_article"].items():
        lines.append(_ROW.format(name=name, **figures))
    lines.append(_ROW.format(name="**all**", **report["all"]))
    if report["confidence_reliability"]:
        lines += [
            "",
            "answer.confidence against right answers (every answer given; to a removed answer, wrong):",
        ]
        lines += ["| confidence | answers | mean confidence | right |", "|---|---|---|---|"]
        lines += [
            f"| {b['bin']} | {b['count']} | {b['mean_probability']:.3f} | {b['true']:.3f} |"
            for b in report["confidence_reliability"]
        ]
    if report["answered_removed_examples"]:
        lines += ["", "answered although the answer was removed (examples):"]
        lines += [
            f"- {e['article']}: {e['question']} → {e['answer']}" for e in report["answered_removed_examples"]
        ]
    return "\n".join(lines)
