import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.corpus import Document, read_corpus
from qa.passages import _LIST_MARKER as LIST_LINE
from qa.passages import sentence_spans, split_document
from tests.conftest import write_corpus

LIST_MARKER = re.compile(r"(?m)^" + LIST_LINE.pattern.removeprefix("^"))


def doc(text: str, fmt: str = "markdown") -> Document:
    return Document("d", "Title", None, None, text, "d.md", fmt)


def test_offsets_hold_for_every_passage_and_sentence(tmp_path: Path) -> None:
    for document in read_corpus(write_corpus(tmp_path)).documents:
        for passage in split_document(document, 120):
            assert document.text[passage.start : passage.end] == passage.text
            assert passage.sentences[0].start == passage.start and passage.sentences[-1].end == passage.end


def test_abbreviations_money_and_dashes_do_not_break_sentences() -> None:
    text = (
        "Russia lags the U.S. and China in AI. It projects more than 11 trillion "
        "rubles—approximately $136 billion—to GDP by 2030. Gigachat was developed by Sberbank."
    )
    spans = sentence_spans(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == [
        "Russia lags the U.S. and China in AI.",
        "It projects more than 11 trillion rubles—approximately $136 billion—to GDP by 2030.",
        "Gigachat was developed by Sberbank.",
    ]


def test_headings_are_context_not_cited_text() -> None:
    text = "# Guide\n\n## Cost\n\nIt costs $5. It is cheap.\n\n## Care\n\n- Water weekly.\n- Trim in May.\n"
    passages = split_document(doc(text), 500)
    assert [p.heading for p in passages] == ["Guide › Cost", "Guide › Care"]
    assert [p.text for p in passages] == ["It costs $5. It is cheap.", "Water weekly.\n- Trim in May."]
    assert [len(p.sentences) for p in passages] == [2, 2]
    assert all("#" not in p.text for p in passages)


def test_long_paragraphs_split_at_sentence_boundaries() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    passages = split_document(doc(text, "text"), 100)
    assert len(passages) > 1
    assert all(len(p.text) <= 100 for p in passages)
    assert " ".join(p.text for p in passages) == text


def test_passage_ids_are_content_based() -> None:
    text = "## A\n\nFirst paragraph here.\n\n## B\n\nSecond paragraph here.\n"
    before = {p.text: p.passage_id for p in split_document(doc(text), 500)}
    edited = text.replace("Second paragraph here.", "Second paragraph, edited.")
    after = {p.text: p.passage_id for p in split_document(doc(edited), 500)}
    assert after["First paragraph here."] == before["First paragraph here."]
    assert after["Second paragraph, edited."] != before["Second paragraph here."]


def test_repeated_paragraphs_get_distinct_ids() -> None:
    passages = split_document(doc("Same words.\n\nSame words.\n"), 500)
    assert len({p.passage_id for p in passages}) == 2


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=600), st.sampled_from(["markdown", "text"]), st.integers(20, 400))
def test_property_offsets_and_order_for_any_unicode(text: str, fmt: str, max_chars: int) -> None:
    document = doc(text, fmt)
    passages = split_document(document, max_chars)
    previous_end = 0
    for passage in passages:
        assert text[passage.start : passage.end] == passage.text
        assert passage.start >= previous_end  # in document order, never overlapping
        previous_end = passage.end
        for sentence in passage.sentences:
            assert passage.start <= sentence.start < sentence.end <= passage.end
            assert text[sentence.start : sentence.end].strip() == text[sentence.start : sentence.end]
    if fmt == "text":  # no headings: every visible character is cited somewhere, but list markers
        covered = [False] * len(text)
        for passage in passages:
            covered[passage.start : passage.end] = [True] * (passage.end - passage.start)
        for match in LIST_MARKER.finditer(text):
            covered[match.start() : match.end()] = [True] * (match.end() - match.start())
        assert all(c or ch.isspace() for c, ch in zip(covered, text))


def test_both_sentence_splitters_keep_abbreviations_money_and_dashes() -> None:
    text = (
        "Russia lags the U.S. and China in AI. It projects more than 11 trillion "
        "rubles—approximately $136 billion—to GDP by 2030. Dr. Smith left at 3 p.m. on Jan. 5. Done."
    )
    expected = [
        "Russia lags the U.S. and China in AI.",
        "It projects more than 11 trillion rubles—approximately $136 billion—to GDP by 2030.",
        "Dr. Smith left at 3 p.m. on Jan. 5.",
        "Done.",
    ]
    for splitter in ("pysbd", "sentencex"):
        spans = sentence_spans(text, 0, len(text), splitter=splitter)
        assert [text[s:e] for s, e in spans] == expected, splitter


def test_the_sentence_splitter_is_part_of_the_index_settings(built_settings) -> None:
    from qa.store import check

    assert check(built_settings) is None
    other = built_settings.model_copy(update={"sentence_splitter": "pysbd"})
    assert check(other) == "the splitter settings changed since the index was built"
