"""Documents as people have them: HTML, PDF, Word, FAQ lists and plain text, each generated here by
the library that writes the format, read into sections whose headings are never cited."""

import codecs
import json
import re
from pathlib import Path

import docx
import pytest
from fpdf import FPDF

from qa.builder import build_index
from qa.config import Settings
from qa.corpus import CorpusError, read_corpus
from qa.encoder import HashingEncoder
from qa.engine import Engine
from qa.passages import split_document
from qa.store import load_index

RUNNING_HEADER = "Beekeeping Quarterly - Spring issue"
PARAGRAPH = (
    "Varroa destructor is a parasitic mite that feeds on honey bees. The mites weaken colonies and "
    "spread viruses to the brood of every hive, which is why beekeepers count them each month."
)


def write_html(folder: Path) -> Path:
    path = folder / "festival.html"
    path.write_text(
        """<!doctype html><html><head><title>Millbrook Honey Festival 2025</title></head><body>
        <nav><a href="/">Home</a> <a href="/events">Events</a></nav><article>
        <h1>Millbrook Honey Festival 2025</h1>
        <p>The Millbrook Honey Festival returns to the village green on Saturday 14 June 2025. Local
        beekeepers will sell raw honey, beeswax candles and mead.</p>
        <h2>Tickets</h2><p>Entry is five pounds for adults and free for children under twelve.</p>
        <h2>Talks</h2><ul><li>Keeping bees in a small garden, at eleven.</li>
        <li>Varroa mites and how to treat them, after lunch.</li></ul>
        </article><footer>Village council</footer></body></html>""",
        encoding="utf-8",
    )
    return path


class _Quarterly(FPDF):
    def header(self) -> None:
        self.set_font("Helvetica", size=8)
        self.cell(0, 8, RUNNING_HEADER, align="C")
        self.ln(12)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.cell(0, 10, f"Page {self.page_no()}", align="C")


def write_pdf(folder: Path) -> Path:
    """Two pages or more, with a running header, page numbers, a heading in larger type, paragraphs
    wrapped over many lines (one across the page break) and a word hyphenated at a line end."""
    pdf = _Quarterly(format="A5")
    pdf.set_title("Varroa and the honey bee")
    pdf.add_page()

    def write(text: str, size: int, style: str = "", height: int = 6) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, height, text, new_x="LMARGIN", new_y="NEXT")

    write("Varroa and the honey bee", 18, "B", 9)
    pdf.ln(4)
    for number in range(8):
        write(f"Part {number}. {PARAGRAPH}", 11)
        pdf.ln(4)
    write("Deformed wing virus", 14, "B", 8)
    pdf.ln(2)
    write("Deformed wing virus is the most common virus the mites carry; bees infected as pupae emerge", 11)
    write(
        "with crumpled wings. Counting the mites that fall onto a sticky board tells how heavy the infesta-",
        11,
    )
    write("tion is.", 11)
    path = folder / "varroa.pdf"
    pdf.output(str(path))
    return path


def write_docx(folder: Path) -> Path:
    document = docx.Document()
    document.core_properties.title = "Hive inspection guide"
    document.add_paragraph("Hive inspection guide", style="Title")
    document.add_paragraph("Inspect the hive every week from spring to late summer, on a warm and calm day.")
    document.add_paragraph("What to look for", style="Heading 1")
    document.add_paragraph("Eggs standing upright in the cells", style="List Bullet")
    document.add_paragraph("Capped brood in a compact pattern", style="List Bullet")
    document.add_paragraph("Swarm cells", style="Heading 2")
    document.add_paragraph("Queen cells along the bottom of a frame mean the colony is preparing to swarm.")
    table = document.add_table(rows=2, cols=2)
    for row, (month, task) in enumerate([("April", "first full inspection"), ("August", "harvest honey")]):
        table.cell(row, 0).text, table.cell(row, 1).text = month, task
    path = folder / "inspection.docx"
    document.save(str(path))
    return path


def write_faq(folder: Path) -> tuple[Path, Path]:
    rows = [
        {
            "question": "How often should I feed my bees?",
            "answer": "Feed sugar syrup in autumn only when the hive is light.",
        },
        {
            "question": "When do bees swarm?",
            "answer": "Colonies usually swarm in May and June, when they are crowded.",
        },
    ]
    csv_path = folder / "faq.csv"
    csv_path.write_text(
        "Question,Answer\n" + "".join(f'"{r["question"]}","{r["answer"]}"\n' for r in rows), encoding="utf-8"
    )
    jsonl_path = folder / "more-faq.jsonl"
    more = [
        {"question": "Do bees sleep?", "answer": "Worker bees rest for several hours a day, mostly at night."}
    ]
    jsonl_path.write_text("".join(json.dumps(r) + "\n" for r in more), encoding="utf-8")
    return csv_path, jsonl_path


@pytest.fixture
def formats_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    write_html(folder)
    write_pdf(folder)
    write_docx(folder)
    write_faq(folder)
    (folder / "notes.txt").write_text(
        "Notes on wax moths\n\nWax moths lay eggs in weak colonies. Freeze spare combs to kill them.",
        encoding="utf-8",
    )
    return folder


def _documents(folder: Path) -> dict[str, object]:
    return {d.path: d for d in read_corpus(folder).documents}


def test_html_headings_are_sections_and_the_date_is_not_guessed(formats_corpus: Path) -> None:
    doc = _documents(formats_corpus)["festival.html"]
    assert doc.title == "Millbrook Honey Festival 2025"
    assert doc.published is None  # "Saturday 14 June 2025" is the event, not the page's date
    passages = split_document(doc, 1500)
    assert {p.heading for p in passages} >= {"Millbrook Honey Festival 2025 › Tickets"}
    assert all("Millbrook Honey Festival 2025" not in p.text for p in passages)
    assert any(p.text.startswith("Entry is five pounds") for p in passages)
    assert "Home" not in doc.text and "Village council" not in doc.text


def test_pdf_paragraphs_are_rebuilt_without_running_headers_and_with_pages(formats_corpus: Path) -> None:
    doc = _documents(formats_corpus)["varroa.pdf"]
    assert doc.title == "Varroa and the honey bee"
    assert RUNNING_HEADER not in doc.text and not re.search(r"Page \d", doc.text)
    assert "infestation is." in doc.text  # the hyphenated line end undone
    paragraphs = [p for p in doc.text.split("\n\n") if not p.startswith("#")]
    assert all("\n" not in p for p in paragraphs)  # line wraps joined
    assert all(p.count("Varroa destructor") <= 1 for p in paragraphs)  # one paragraph each
    assert len([p for p in paragraphs if p.startswith("Part ")]) == 8  # the one across pages too
    assert doc.pages[0] == 0 and len(doc.pages) >= 2
    headings = [line for line in doc.text.splitlines() if line.startswith("#")]
    assert headings == ["# Varroa and the honey bee", "## Deformed wing virus"]
    passages = split_document(doc, 300)
    assert [doc.page_at(p.start) for p in passages][-1] == len(doc.pages)


def test_word_styles_become_headings_and_lists(formats_corpus: Path) -> None:
    doc = _documents(formats_corpus)["inspection.docx"]
    assert doc.format == "docx" and doc.title == "Hive inspection guide"
    assert "# Hive inspection guide\n\n" in doc.text
    assert "## What to look for\n\n- Eggs standing upright in the cells\n- Capped brood" in doc.text
    assert "### Swarm cells" in doc.text
    assert "April | first full inspection\nAugust | harvest honey" in doc.text
    passages = split_document(doc, 1500)
    assert any(p.heading.endswith("Swarm cells") and p.text.startswith("Queen cells") for p in passages)


def test_faq_answers_are_passages_under_their_questions(formats_corpus: Path) -> None:
    documents = _documents(formats_corpus)
    for name, question, answer in [
        ("faq.csv", "When do bees swarm?", "Colonies usually swarm in May and June, when they are crowded."),
        ("more-faq.jsonl", "Do bees sleep?", "Worker bees rest for several hours a day, mostly at night."),
    ]:
        doc = documents[name]
        assert doc.format == "faq"
        passages = split_document(doc, 1500)
        assert any(p.heading == question and p.text == answer for p in passages)


def test_faq_files_without_questions_and_answers_are_refused(tmp_path: Path) -> None:
    (tmp_path / "faq.csv").write_text("q,a\nWhy?,Because.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="question and answer columns"):
        read_corpus(tmp_path)
    (tmp_path / "faq.csv").write_text("question,answer\nWhy?,\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="line 2: needs both a question and an answer"):
        read_corpus(tmp_path)
    # An answer with an unquoted comma was cut at the comma, silently.
    (tmp_path / "faq.csv").write_text(
        "question,answer\nHow to pay?,By card, cash or transfer.\n", encoding="utf-8"
    )
    with pytest.raises(CorpusError, match="line 2 has more fields than the header: put a field that holds"):
        read_corpus(tmp_path)
    (tmp_path / "faq.csv").unlink()
    (tmp_path / "faq.jsonl").write_text('{"question": "Why?", "answer": "Because."}\n[1]\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="line 2: expected an object"):
        read_corpus(tmp_path)


def test_text_title_from_a_first_line_that_reads_as_one(formats_corpus: Path, tmp_path: Path) -> None:
    doc = _documents(formats_corpus)["notes.txt"]
    assert doc.title == "Notes on wax moths" and doc.text.startswith("Wax moths lay eggs")
    other = tmp_path / "other"
    other.mkdir()
    (other / "plain.txt").write_text("Bees make honey.\n\nThey store it in wax cells.", encoding="utf-8")
    (plain,) = read_corpus(other).documents
    assert plain.title == "plain" and plain.text.startswith("Bees make honey.")  # a sentence, not a title


def test_unreadable_pdf_and_word_files_get_a_message(tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(CorpusError, match="unreadable PDF"):
        read_corpus(tmp_path)
    (tmp_path / "broken.pdf").unlink()
    (tmp_path / "broken.docx").write_bytes(b"PK not a zip")
    with pytest.raises(CorpusError, match="unreadable Word document"):
        read_corpus(tmp_path)


def test_no_answer_or_citation_is_a_heading_title_page_number_or_running_header(
    formats_corpus: Path, tmp_path: Path
) -> None:
    settings = Settings(
        corpus_dir=formats_corpus,
        index_dir=tmp_path / "index",
        model="hashing",
        abstain_similarity=0.0,
        abstain_coverage=0.0,
        reader="off",  # every question answered: this checks what an answer can be, not whether to give one
    )
    build_index(settings, HashingEncoder())
    index = load_index(settings.index_dir)
    forbidden = {d.title for d in index.documents.values()} | {RUNNING_HEADER}
    headings = {
        line.lstrip("# ")
        for d in index.documents.values()
        for line in d.text.splitlines()
        if line.startswith("#")
    }
    engine = Engine(settings, HashingEncoder(), index)
    questions = [
        "When is the Millbrook Honey Festival?",
        "How much is entry?",
        "Which virus do the mites spread?",
        "What does counting mites tell?",
        "What do swarm cells mean?",
        "When do bees swarm?",
        "Do bees sleep?",
        "How do I kill wax moths?",
        "Hive inspection guide",
        "Deformed wing virus",
    ]
    pdf_pages = []
    for question in questions:
        result = engine.ask(question, top_k=5)
        assert result.answered and result.answer is not None
        spans = [result.answer.text, *(c.text for c in result.citations)]
        for span in spans:
            lines = {line.strip() for line in span.splitlines()}
            assert not lines & (forbidden | headings), (question, span)
            assert not any(line.startswith("#") or re.fullmatch(r"(Page )?\d+", line) for line in lines)
        pdf_pages += [c.page for c in result.citations if c.doc_id == "varroa"]
        assert all(c.page is None for c in result.citations if c.doc_id != "varroa")
    assert pdf_pages and all(1 <= page <= len(index.documents["varroa"].pages) for page in pdf_pages)


def test_a_hyphen_at_a_line_end_is_kept_when_it_belongs_to_the_word() -> None:
    from qa.readers.pdf import _hyphenated

    assert _hyphenated("how heavy the infesta-", "tion is")  # "infestation"
    assert _hyphenated("the develop-", "ment of")
    assert not _hyphenated("various gold-", "themed initiatives")  # "gold-themed"
    assert not _hyphenated("a well-", "known fact")
    assert not _hyphenated("a dash -", "then more")


def test_html_text_is_the_page_text_not_markdown_escapes(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        "<html><head><title>Notes</title></head><body><article><h1>Notes</h1>"
        "<p>The queen lays eggs [citation needed] in *spring* and_summer, about 2,000 a day.</p>"
        "<p># is not a heading here, and 1. is not a list.</p></article></body></html>",
        encoding="utf-8",
    )
    (doc,) = read_corpus(tmp_path).documents
    assert "The queen lays eggs [citation needed] in *spring* and_summer, about 2,000 a day." in doc.text
    assert all(
        not p.heading.endswith("is not a heading here, and 1. is not a list.")
        for p in split_document(doc, 1500)
    )


def test_every_file_is_accounted_for_and_other_encodings_are_read(tmp_path: Path) -> None:
    """A file of a format qa does not read is listed once with the formats it reads; a text in
    Windows-1252 is read (the guess recorded), not refused, and one with a UTF-16 or UTF-32 byte-order
    mark in that encoding; bytes no encoding fits, or cut short of the one their mark names, are refused."""
    (tmp_path / "data.json").write_text('{"a": 1}', encoding="utf-8")
    (tmp_path / "notes.rtf").write_text("{\\rtf1 Hello}", encoding="utf-8")
    text = "Café crème and naïve résumés: the café opens at nine, closes at five, all year round."
    (tmp_path / "menu.txt").write_bytes(text.encode("cp1252"))
    corpus = read_corpus(tmp_path, skip_invalid=True)
    (menu,) = corpus.documents
    assert menu.text == text and menu.encoding == "cp1252"
    assert [s.split(":")[0] for s in corpus.skipped] == ["data.json", "notes.rtf"]
    assert all("not a format qa reads (.md, " in s for s in corpus.skipped)
    for encoding in ("utf_16", "utf_32"):  # Windows' "Unicode" and its wider kin: a byte-order mark
        (tmp_path / "menu.txt").write_bytes(text.encode(encoding))
        (menu,) = read_corpus(tmp_path).documents
        assert menu.text == text and menu.encoding == encoding
    for cut_short in (text.encode("utf-16")[:-1], codecs.BOM_UTF16_LE + b"bad"):
        (tmp_path / "menu.txt").write_bytes(cut_short)  # odd in length: not UTF-16, nor Windows-1252
        with pytest.raises(CorpusError, match="not text in any encoding"):
            read_corpus(tmp_path)
    (tmp_path / "menu.txt").write_bytes(
        bytes(range(256)) * 4
    )  # every byte value: no encoding reads it as text
    with pytest.raises(CorpusError, match="not text in any encoding"):
        read_corpus(tmp_path)
