"""Train the answer-sentence cross-encoder: (question, sentence) -> does this sentence answer it.

The bundled all-MiniLM-L6-v2 weights are fine-tuned as a cross-encoder on SQuAD v2.0 dev
(public, CC BY-SA 4.0). Articles are split by a fixed rule: every third article in file order
(0, 3, 6, ...) is held out, and so is every SQuAD v1.1 dev article that is not in v2.0; only the
other two thirds of the v2.0 articles are trained on. The result is exported to ONNX and quantised
to int8 (about 23 MB), and ``--evaluate`` measures it against the bi-encoder's cosine: on held-out
SQuAD paragraphs (does the top sentence hold the answer; answerable against unanswerable), and on
question files over the corpus (answerable against near-topic).

    python -m qa.tools.train_reranker SQUAD_V2_DEV --out DIR
    python -m qa.tools.train_reranker SQUAD_V2_DEV --evaluate DIR [--set FILE ...]

Reproducible with ``--seed``: the same data, order and initialisation give the same weights. The
service does not use the model (the README says what it measured); this is how to try again.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from qa.config import bundled_model_path

# Ways people type that SQuAD's crowd-workers mostly did not: lower case without a question mark,
# "according to the article" openings, a slipped letter. Applied to training questions at random.
PREFIXES = (
    "according to the article, ",
    "according to the text, ",
    "does the article say ",
    "in the piece, ",
    "the article mentions ",
)


@dataclass(frozen=True)
class Pair:
    question: str
    sentence: str
    label: float


def held_out(index: int) -> bool:
    """The fixed split: every third v2.0 article in file order is never trained on."""
    return index % 3 == 0


def read_squad(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return json.load(handle)["data"]


def _sentences(text: str) -> list[tuple[int, int]]:
    from qa.passages import sentence_spans

    spans: list[tuple[int, int]] = []
    offset = 0
    for block in text.split("\n"):
        spans.extend(sentence_spans(text, offset, offset + len(block)))
        offset += len(block) + 1
    return spans


def _overlap(question: set[str], sentence: str) -> int:
    from qa.terms import analyze_one

    return len(question & set(analyze_one(sentence)))


def _noisy(question: str, rng: random.Random) -> str:
    if rng.random() < 0.25:
        question = question.lower().rstrip("?").strip()
    if rng.random() < 0.1:
        question = rng.choice(PREFIXES) + question[:1].lower() + question[1:]
    if rng.random() < 0.1:
        words = question.split()
        long = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
        if long:
            i = rng.choice(long)
            j = rng.randrange(1, len(words[i]) - 1)
            w = words[i]
            words[i] = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
            question = " ".join(words)
    return question


def training_pairs(articles: list[dict], seed: int) -> list[Pair]:
    """Per answerable question: its answer sentence, two other sentences of the paragraph and the
    sentence of another paragraph that shares most words with it. Per unanswerable question (written
    to look answerable from its paragraph): the two sentences of the paragraph sharing most words."""
    from qa.terms import analyze_one

    rng = random.Random(seed)
    pairs: list[Pair] = []
    for article in articles:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            text = paragraph["context"]
            spans = _sentences(text)
            paragraphs.append((paragraph, [(s, e, text[s:e]) for s, e in spans]))
        for number, (paragraph, sentences) in enumerate(paragraphs):
            if not sentences:
                continue
            for qa in paragraph["qas"]:
                question = qa["question"].strip()
                words = set(analyze_one(question))
                noisy = _noisy(question, rng)
                if qa.get("is_impossible") or not qa.get("answers"):
                    ranked = sorted(sentences, key=lambda s: -_overlap(words, s[2]))
                    pairs.extend(Pair(noisy, s[2], 0.0) for s in ranked[:2])
                    continue
                answer = qa["answers"][0]
                start, end = answer["answer_start"], answer["answer_start"] + len(answer["text"])
                positive = [s for s in sentences if s[0] <= start < s[1]]
                if not positive:
                    continue
                pairs.append(Pair(noisy, positive[0][2], 1.0))
                others = [s for s in sentences if s[1] <= start or s[0] >= end]
                for s in rng.sample(others, min(2, len(others))):
                    pairs.append(Pair(noisy, s[2], 0.0))
                elsewhere = [s for n, (_, ss) in enumerate(paragraphs) if n != number for s in ss]
                if elsewhere:
                    candidates = rng.sample(elsewhere, min(60, len(elsewhere)))
                    hard = max(candidates, key=lambda s: _overlap(words, s[2]))
                    pairs.append(Pair(noisy, hard[2], 0.0))
    rng.shuffle(pairs)
    return pairs


def train(
    pairs: list[Pair], base: str, out: Path, *, epochs: int, batch: int, lr: float, max_length: int, seed: int
) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    torch.manual_seed(seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    model.train()
    steps = epochs * math.ceil(len(pairs) / batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = random.Random(seed)
    step, started = 0, time.perf_counter()
    for epoch in range(epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        running = 0.0
        for offset in range(0, len(order), batch):
            chunk = [pairs[i] for i in order[offset : offset + batch]]
            inputs = tokenizer(
                [p.question for p in chunk],
                [p.sentence for p in chunk],
                padding=True,
                truncation="only_second",
                max_length=max_length,
                return_tensors="pt",
            )
            labels = torch.tensor([p.label for p in chunk])
            logits = model(**inputs).logits.squeeze(-1)
            loss = loss_fn(logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            running += float(loss)
            if step % 50 == 0:
                elapsed = time.perf_counter() - started
                print(
                    f"epoch {epoch + 1} step {step}/{steps} loss {running / 50:.4f} "
                    f"({elapsed:.0f}s, {elapsed / step:.2f}s/step)",
                    flush=True,
                )
                running = 0.0
    model.eval()
    work = out / "torch"
    model.save_pretrained(work)
    tokenizer.save_pretrained(work)
    return work


def export(work: Path, out: Path, max_length: int) -> Path:
    """ONNX export of the trained model, quantised to int8 weights (dynamic quantisation)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    from qa.encoder import export_bert

    model = AutoModelForSequenceClassification.from_pretrained(work).eval()
    fp32 = out / "model-fp32.onnx"
    export_bert(model, "logits", fp32, {0: "batch"})
    quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8)
    fp32.unlink()
    shutil.copy(work / "tokenizer.json", out / "tokenizer.json")
    return out / "model.onnx"


def evaluate(squad: list[dict], folder: Path, question_files: list[Path], sample: int, seed: int) -> None:
    """The model against the bi-encoder's cosine, on what it was not trained on."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from qa.config import Settings
    from qa.encoder import encoder_from
    from qa.tools.sentence_scorer import SentenceScorer

    scorer = SentenceScorer(folder)
    encoder = encoder_from(Settings())
    items = [
        (p["context"], qa)
        for i, a in enumerate(squad)
        if held_out(i)
        for p in a["paragraphs"]
        for qa in p["qas"]
    ]
    random.Random(seed).shuffle(items)
    right = {"model": 0, "cosine": 0}
    best: dict[str, list[float]] = {"model": [], "cosine": []}
    labels, answerable = [], 0
    for context, qa in items[:sample]:
        spans = _sentences(context)
        sentences = [context[s:e] for s, e in spans]
        if not sentences:
            continue
        scores = {
            "model": scorer.score(qa["question"], sentences),
            "cosine": (lambda v: v[1:] @ v[0])(encoder.encode([qa["question"], *sentences])),
        }
        labels.append(not qa.get("is_impossible"))
        for name, values in scores.items():
            best[name].append(float(values.max()))
        if labels[-1]:
            answerable += 1
            start = qa["answers"][0]["answer_start"]
            gold = {k for k, (s, e) in enumerate(spans) if s <= start < e}
            for name, values in scores.items():
                right[name] += int(np.argmax(values)) in gold
    print(f"held-out SQuAD v2.0 paragraphs, {len(labels)} questions ({answerable} answerable):")
    for name in ("model", "cosine"):
        print(
            f"  {name:<7} top sentence holds the answer {right[name] / max(answerable, 1):.3f}; "
            f"AUC answerable vs unanswerable {roc_auc_score(labels, best[name]):.3f}"
        )
    if question_files:
        from qa.cli import load_engine
        from qa.evaluation.evaluate import load_eval_set

        engine = load_engine(Settings())
        for path in question_files:
            rows = []
            for item in load_eval_set(path):
                if item.kind == "off_topic":
                    continue
                result = engine.ask(item.question, 1, use_cache=False)
                passage = engine.index.passages[engine.index.positions[result.ranking[0].passage_id]]
                text = engine.index.documents[passage.doc_id].text
                sentences = [text[s.start : s.end] for s in passage.sentences]
                rows.append(
                    (
                        item.answerable,
                        float(scorer.score(item.question, sentences).max()),
                        result.signals["similarity"],
                    )
                )
            y = [r[0] for r in rows]
            print(
                f"{path.name}: answerable vs near-topic AUC, model {roc_auc_score(y, [r[1] for r in rows]):.3f}, "
                f"similarity {roc_auc_score(y, [r[2] for r in rows]):.3f}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad_v2", type=Path, help="SQuAD v2.0 dev JSON (optionally .gz)")
    parser.add_argument("--out", type=Path, help="folder for model.onnx, tokenizer.json, meta.json")
    parser.add_argument("--evaluate", type=Path, help="measure the model in this folder instead of training")
    parser.add_argument("--set", type=Path, action="append", default=[], help="question file to measure on")
    parser.add_argument("--sample", type=int, default=1000, help="held-out SQuAD questions to measure on")
    parser.add_argument("--base", default=bundled_model_path(), help="model to start from")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-5)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--limit", type=int, default=0, help="train on at most this many pairs (0 = all)")
    args = parser.parse_args(argv)

    articles = read_squad(args.squad_v2)
    if args.evaluate:
        evaluate(articles, args.evaluate, args.set, args.sample, args.seed)
        return
    if args.out is None:
        parser.error("--out is required to train")
    train_articles = [a for i, a in enumerate(articles) if not held_out(i)]
    pairs = training_pairs(train_articles, args.seed)
    if args.limit:
        pairs = pairs[: args.limit]
    positives = sum(p.label > 0 for p in pairs)
    print(
        f"{len(train_articles)} of {len(articles)} articles; {len(pairs)} pairs "
        f"({positives} answering, {len(pairs) - positives} not)",
        flush=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    work = train(
        pairs,
        args.base,
        args.out,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        max_length=args.max_length,
        seed=args.seed,
    )
    trained = time.perf_counter() - started
    onnx_file = export(work, args.out, args.max_length)
    shutil.rmtree(work)
    meta = {
        "base": Path(args.base).parent.name if Path(args.base).name == "model" else args.base,
        "data": "SQuAD v2.0 dev, articles not held out (index % 3 != 0)",
        "held_out_articles": [a["title"] for i, a in enumerate(articles) if held_out(i)],
        "trained_articles": [a["title"] for a in train_articles],
        "pairs": len(pairs),
        "positives": positives,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "max_length": args.max_length,
        "seed": args.seed,
        "train_seconds": round(trained),
        "quantisation": "onnxruntime dynamic int8",
    }
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"trained in {trained:.0f}s; wrote {onnx_file} ({onnx_file.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
