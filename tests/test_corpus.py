from pathlib import Path

import pytest

from qa.corpus import corpus_fingerprint, read_corpus
from qa.errors import CorpusError
from tests.conftest import write_corpus


def test_loads_markdown_text_and_front_matter(tmp_path: Path) -> None:
    docs = {d.doc_id: d for d in read_corpus(write_corpus(tmp_path)).documents}
    assert sorted(docs) == ["bees", "solar", "trains"]
    solar = docs["solar"]
    assert solar.title == "Solar panels"
    assert solar.source == "https://example.org/solar"
    assert solar.published == "2024-05-01"
    assert solar.text.startswith("# Solar panels\n")  # front matter is not part of the text
    assert docs["bees"].format == "text" and docs["bees"].title == "bees"


def test_repository_article_keeps_the_seed_text_verbatim() -> None:
    root = Path(__file__).resolve().parent.parent
    (article,) = read_corpus(root / "corpus").documents
    seed = root.parent / "shared" / "seed" / "000_484431fbf8b6cb0c.txt"
    if not seed.exists():
        pytest.skip("the seed text is not beside this checkout")
    for line in seed.read_text(encoding="utf-8").splitlines():
        if line.strip() not in ("", "-"):
            assert line.removeprefix("- ") in article.text
    assert "—approximately $136 billion—" in article.text and "Russia’s" in article.text


def test_ids_are_stable_and_derived_from_paths(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "My Notes.txt").write_text("Some text here.", encoding="utf-8")
    first = read_corpus(tmp_path).documents[0]
    assert first.doc_id == "sub-My-Notes"
    assert read_corpus(tmp_path).documents[0] == first


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.txt", bytes(range(256)) * 4, "not text in any encoding"),
        ("broken.md", b"---\ntitle: [unclosed\n---\nBody text.", "broken front matter"),
        ("empty.md", b"---\ntitle: Nothing\n---\n\n   \n", "empty"),
        ("badid.md", b"---\nid: 'has spaces'\n---\nBody.", "invalid id"),
    ],
)
def test_bad_files_are_named_with_the_problem(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    write_corpus(tmp_path)
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CorpusError) as error:
        read_corpus(tmp_path)
    assert name in str(error.value) and problem in str(error.value)


def test_duplicate_ids_name_both_files(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    (tmp_path / "copy.md").write_text("---\nid: solar\n---\nAnother text.", encoding="utf-8")
    with pytest.raises(CorpusError, match="duplicate document id 'solar'") as error:
        read_corpus(tmp_path)
    assert "copy.md" in str(error.value) and "solar.md" in str(error.value)


def test_html_main_text_title_and_source(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        """<html><head><title>Tidal power explained</title>
        <link rel="canonical" href="https://example.org/tidal"></head>
        <body><nav>Home | About | Contact</nav><article><h1>Tidal power explained</h1>
        <p>Tidal power uses the rise and fall of the sea to turn turbines. The first large tidal
        station opened at La Rance in France in 1966 and still produces electricity today.</p>
        <p>Tidal energy is predictable because tides follow the moon, unlike wind or sunshine.</p>
        </article><footer>Copyright notice</footer></body></html>""",
        encoding="utf-8",
    )
    (doc,) = read_corpus(tmp_path).documents
    assert doc.format == "html"
    assert doc.title == "Tidal power explained"
    assert doc.source == "https://example.org/tidal"
    assert "La Rance in France in 1966" in doc.text
    assert "Copyright notice" not in doc.text


def test_fingerprint_changes_with_any_edit(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    before = corpus_fingerprint(tmp_path)
    assert corpus_fingerprint(tmp_path) == before
    (tmp_path / "bees.txt").write_text("Bees dance.", encoding="utf-8")
    assert corpus_fingerprint(tmp_path) != before


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="no documents"):
        read_corpus(tmp_path)
