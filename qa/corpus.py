"""Documents: load a corpus folder (.md, .txt, .html, .pdf, .docx, FAQ lists as .csv or .jsonl) into
texts with stable ids and metadata.

Every reader returns the document's text with its structure in Markdown's terms: a section heading
is a line of ``#`` marks and the heading (from HTML ``<h1>``-``<h6>``, Word heading styles, a PDF's
larger type, an FAQ's questions), paragraphs are separated by blank lines. The splitter
(qa/passages.py) makes headings retrieval context, never cited text; every offset points into the
stored text."""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import frontmatter
import yaml

from qa.errors import BuildCancelled, CorpusError
from qa.isolation import ParseLimits, read_contained

# Front matter is a few key: value lines: a large one (or one with YAML aliases) is an attack, not
# metadata. (The limit on a whole file is the setting QA_MAX_DOCUMENT_BYTES.)
MAX_FRONT_MATTER_BYTES = 16 * 2**10
# Every sentence costs a vector (768 bytes) and its share of scoring: a document of more than
# DENSE_SENTENCES sentences must average at least MIN_SENTENCE_CHARS characters a sentence (prose
# averages over 100, a FAQ's short answers about 50; 8 MB of "Hi. " made 2 million and a 1.5 GB file).
DENSE_SENTENCES = 10_000
MIN_SENTENCE_CHARS = 32
_SENTENCE_END = re.compile(r"[.!?](?=\s|\Z)")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_MD_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """One corpus document. Every offset in the package points into ``text``."""

    doc_id: str
    title: str
    source: str | None
    published: str | None
    text: str
    path: str  # relative to the corpus folder
    format: str  # a format name of READERS: "markdown", "text", "html", "pdf", "docx" or "faq"
    pages: tuple[int, ...] = ()  # a PDF's: the offset in ``text`` where each page begins

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset``, for a paged document (None otherwise)."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None

    @property
    def content_hash(self) -> str:
        """Hash of what retrieval sees: text and metadata (an edit of either re-embeds the document)."""
        payload = json.dumps([self.doc_id, self.title, self.source, self.published, self.text])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Corpus:
    """What a build reads: the documents, the fingerprint of the bytes they came from, and the files
    left out (a link leading outside the corpus folder, a device or pipe), each with its reason."""

    documents: list[Document]
    fingerprint: str
    skipped: list[str] = field(default_factory=list)


def scan_corpus(corpus_dir: Path) -> tuple[list[Path], list[str]]:
    """Document files under ``corpus_dir``, sorted, and the entries skipped with their reason.

    Hidden files and folders are ignored. A file must resolve inside the corpus folder: a symbolic
    link to a file elsewhere (``/etc/passwd``) is skipped, so is anything but a regular file.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(corpus_dir, "corpus folder does not exist")
    root = corpus_dir.resolve()
    files, skipped = [], []
    for path in sorted(corpus_dir.rglob("*")):
        relative = path.relative_to(corpus_dir)
        if any(part.startswith((".", "_")) for part in relative.parts) or path.suffix.lower() not in SUFFIXES:
            continue
        try:
            if path.is_dir():
                continue
            resolved = path.resolve(strict=True)
        except (OSError, RuntimeError):  # a link to itself or in a loop, or a file deleted meanwhile
            if path.is_symlink():
                skipped.append(
                    f"{relative.as_posix()}: a link that leads nowhere (to itself, in a loop or to nothing)"
                )
            continue
        if not resolved.is_relative_to(root):
            skipped.append(f"{relative.as_posix()}: a link to a file outside the corpus folder")
        elif not resolved.is_file():
            skipped.append(f"{relative.as_posix()}: not a regular file")
        elif (links := _hard_links(resolved)) > 1:  # another name may be outside the folder
            skipped.append(
                f"{relative.as_posix()}: a file with {links} names (hard links), one of which may be outside "
                "the corpus folder: copy it in instead"
            )
        else:
            files.append(path)
    return files, skipped


def _hard_links(path: Path) -> int:
    try:
        return path.stat().st_nlink
    except OSError:  # deleted meanwhile: read_corpus leaves it out
        return 1


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The document files of ``scan_corpus``."""
    return scan_corpus(corpus_dir)[0]


def corpus_fingerprint(corpus_dir: Path, memo: dict[Path, tuple[int, int, bytes]] | None = None) -> str:
    """Hash of the raw bytes of every document file; changes on any edit.

    With ``memo`` (path -> size, mtime, digest), files whose size and modification time did not
    change are not read again: a readiness probe over a large corpus costs a stat per file.
    """
    digests = []
    for path in corpus_files(corpus_dir):
        try:
            stat = path.stat()
        except OSError:  # deleted since the folder was listed: no longer part of the corpus
            continue
        known = memo.get(path) if memo is not None else None
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            file_digest = known[2]
        else:
            file_digest = _digest(path)
            if memo is not None:
                memo[path] = (stat.st_size, stat.st_mtime_ns, file_digest)
        digests.append((path.relative_to(corpus_dir).as_posix(), file_digest))
    return _combine(digests)


def _combine(digests: list[tuple[str, bytes]]) -> str:
    """The corpus fingerprint from each file's relative path and the digest of its bytes."""
    digest = hashlib.sha256()
    for relative, file_digest in digests:
        digest.update(relative.encode())
        digest.update(file_digest)
    return digest.hexdigest()


def read_corpus(
    corpus_dir: Path,
    max_bytes: int | None = None,
    skip_invalid: bool = False,
    cancel: threading.Event | None = None,
    limits: ParseLimits | None = None,
) -> Corpus:
    """Every document, and the corpus fingerprint of exactly the bytes they were parsed from (each
    file is read once). A file over ``max_bytes`` is refused before it is parsed; a PDF or Word file
    is read in a child process under ``limits`` (default ``ParseLimits()``). A file that cannot be
    used stops the read (CorpusError naming it), or with ``skip_invalid`` is skipped with its reason
    (the fingerprint still covers its bytes, so the index is current until the file changes).
    ``cancel`` stops the read between files."""
    documents: list[Document] = []
    digests: list[tuple[str, bytes]] = []
    seen: dict[str, str] = {}
    files, skipped = scan_corpus(corpus_dir)
    for path in files:
        relative = path.relative_to(corpus_dir).as_posix()
        if cancel is not None and cancel.is_set():
            raise BuildCancelled(
                "the build was cancelled: the service is shutting down; nothing was published"
            )
        try:
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # deleted since the folder was listed: not part of the corpus
                continue
            if max_bytes is not None and size > max_bytes:  # refused before it is read whole
                digests.append((relative, _digest(path)))
                raise CorpusError(
                    path,
                    f"{size / 2**20:.1f} MiB is over the limit of {max_bytes / 2**20:.1f} MiB a document "
                    "(QA_MAX_DOCUMENT_BYTES); split it into several files or raise the limit",
                )
            raw = _read_bytes(path)
            digests.append((relative, hashlib.sha256(raw).digest()))
            document = _parse(path, corpus_dir, raw, seen, limits)
        except CorpusError as error:
            if not skip_invalid:
                raise
            skipped.append(f"{relative}: {error.problem}")
            continue
        seen[document.doc_id] = document.path
        documents.append(document)
    if not documents:
        if skipped:
            raise CorpusError(corpus_dir, "no usable documents; left out: " + "; ".join(skipped))
        raise CorpusError(corpus_dir, f"no documents ({', '.join(SUFFIXES)}) found")
    return Corpus(documents, _combine(digests), skipped)


def problem_of(error: Exception) -> str:
    """A reader's unexpected exception as a file's one-line problem."""
    detail = str(error).splitlines()[0][:200] if str(error) else ""
    return f"cannot be read: {type(error).__name__}{': ' + detail if detail else ''}"


def _parse(
    path: Path, corpus_dir: Path, raw: bytes, seen: dict[str, str], limits: ParseLimits | None
) -> Document:
    """One file's document, with an id no other file has. Whatever a reader's libraries raise on a
    hostile file (a date that does not exist, a 4,400-digit number, nesting past the recursion
    limit) is that file's one-line error, never a traceback."""
    try:
        document = read_document(path, corpus_dir, raw, limits)
    except CorpusError:
        raise
    except Exception as error:  # RecursionError (deep nesting) included
        raise CorpusError(path, problem_of(error)) from None
    _encodable(path, document)
    _not_too_dense(path, document)
    if document.doc_id in seen:
        raise CorpusError(
            path, f"duplicate document id {document.doc_id!r} (also used by {seen[document.doc_id]})"
        )
    return document


def _encodable(path: Path, document: Document) -> None:
    """Text and metadata that UTF-8 can store (a lone surrogate escaped in front matter failed only
    when the build was written, after every document had been embedded)."""
    for value in (document.text, document.title, document.source or "", document.published or ""):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise CorpusError(path, f"holds a character UTF-8 cannot store ({error.reason})") from None


def _not_too_dense(path: Path, document: Document) -> None:
    """A document that is mostly tiny sentences is refused before it is split and embedded."""
    sentences = sum(1 for _ in _SENTENCE_END.finditer(document.text))
    if sentences > DENSE_SENTENCES and len(document.text) < sentences * MIN_SENTENCE_CHARS:
        raise CorpusError(
            path,
            f"about {sentences:,} sentences in {len(document.text):,} characters, one every "
            f"{len(document.text) / sentences:.0f}; a document of over {DENSE_SENTENCES:,} sentences must "
            f"average {MIN_SENTENCE_CHARS} characters a sentence (each costs a vector)",
        )


def _digest(path: Path) -> bytes:
    """SHA-256 of a file, read in blocks (a file too large to parse is still fingerprinted)."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").digest()
    except OSError as error:
        raise CorpusError(path, f"cannot be read ({error.strerror or error})") from error


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CorpusError(path, f"cannot be read ({error.strerror or error})") from error


def read_document(path: Path, corpus_dir: Path, raw: bytes, limits: ParseLimits | None = None) -> Document:
    """Parse one file's bytes with the reader of its suffix (``READERS``); a container format's
    (``CONTAINED``) in a child process under ``limits`` (qa/isolation.py)."""
    relative = path.relative_to(corpus_dir).as_posix()
    fmt, reader = READERS[path.suffix.lower()]
    if fmt in CONTAINED:
        text, meta = read_contained(path.suffix.lower(), path, raw, limits or ParseLimits())
    else:
        text, meta = reader(path, raw)
    pages: tuple[int, ...] = tuple(meta.pop("pages", ()))  # type: ignore[arg-type]  # a list of ints
    if not text.strip():
        raise CorpusError(path, "document is empty")
    if not any(character.isalnum() for character in text):
        raise CorpusError(path, "document has no words (only spaces, punctuation or control characters)")
    doc_id = str(meta.get("id") or _id_from_path(relative))
    if not ID_PATTERN.match(doc_id):
        raise CorpusError(path, f"invalid id {doc_id!r}: use letters, digits, '.', '_' and '-'")
    title = str(meta.get("title") or _title_from_text(text, fmt) or Path(relative).stem)
    source = meta.get("source")
    published = meta.get("published") or meta.get("date")
    return Document(
        doc_id=doc_id,
        title=title.strip(),
        source=str(source) if source else None,
        published=str(published) if published else None,
        text=text,
        path=relative,
        format=fmt,
        pages=pages,
    )


def _id_from_path(relative: str) -> str:
    stem = relative.rsplit(".", 1)[0]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    return slug[:128] or "document"


def _title_from_text(text: str, fmt: str) -> str | None:
    if fmt == "markdown":
        match = _MD_TITLE.search(text)
        return match.group(1) if match else None
    return None


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: front matter needs neither, and nested aliases expand
    exponentially (a "billion laughs" document of one line)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def _decoded(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise CorpusError(path, f"not valid UTF-8 (byte {error.start})") from error


_TEXT_TITLE = re.compile(r"\A[ \t]*(?P<title>[^\n]{1,120}?)[ \t]*\n[ \t]*\n(?P<rest>.*\S.*)\Z", re.DOTALL)


def _read_text(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    """Plain text; a first line that reads as a title (short, not ending like a sentence, a blank
    line after it) is the title and not part of the text."""
    text = _decoded(path, raw).strip()
    match = _TEXT_TITLE.match(text)
    if match and match["title"][-1] not in ".!?,;:" and any(c.isalpha() for c in match["title"]):
        return match["rest"].strip(), {"title": match["title"]}
    return text, {}


def _read_markdown(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    # As python-frontmatter's parse(), with limits before the YAML is loaded.
    text = _decoded(path, raw).strip()
    handler = frontmatter.YAMLHandler()
    if not handler.detect(text):
        return text, {}
    try:
        front, content = handler.split(text)
    except ValueError:  # an opening fence without a closing one: no front matter
        return text, {}
    if len(front.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise CorpusError(
            path,
            f"broken front matter: over {MAX_FRONT_MATTER_BYTES // 1024} KiB (it holds key: value lines)",
        )
    try:
        metadata = yaml.load(front, Loader=_NoAliasLoader) or {}
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CorpusError(path, f"broken front matter: {problem}") from error
    if not isinstance(metadata, dict):
        raise CorpusError(path, "broken front matter: expected key: value pairs")
    return content.strip(), dict(metadata)


_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")


def _unescaped(text: str) -> str:
    """The page's characters, not Markdown's escapes of them ("\\[citation needed\\]" is
    "[citation needed]" on the page); a "#" opening a line stays escaped, or it would be a heading."""

    def character(match: re.Match[str]) -> str:
        at_line_start = match.start() == 0 or text[match.start() - 1] == "\n"
        return match.group(0) if match.group(1) == "#" and at_line_start else match.group(1)

    return _MD_ESCAPE.sub(character, text)


def _read_html(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    """The page's main text (trafilatura drops navigation, footers and boilerplate) as Markdown, so
    that ``<h1>``-``<h6>`` are section headings; the date only from the page's metadata, never
    guessed from dates in its text. One parse: trafilatura heads its Markdown with the metadata."""
    import trafilatura  # imported here: only HTML corpora pay for it

    text = trafilatura.extract(
        _decoded(path, raw),
        output_format="markdown",
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        with_metadata=True,
        date_extraction_params={"extensive_search": False, "original_date": True},
    )
    meta: dict[str, str] = {}
    if text and text.startswith("---\n"):  # "key: value" lines (read as such: a title may hold ": ")
        header, _, text = text[4:].partition("\n---\n")
        for line in header.splitlines():
            key, _, value = line.partition(": ")
            meta[key.strip()] = value.strip().strip('"')
    if not text or not text.strip():
        raise CorpusError(path, "no main text found in the HTML page")
    text = _unescaped(text)
    return text.strip(), {
        "title": meta.get("title"),
        "source": meta.get("url"),
        "published": meta.get("date"),
    }


# A PDF line in the top or bottom margin (this share of the page height) that repeats on other pages,
# or is only a page number, or is in smaller type than the body, is a running header or footer.
_MARGIN = 0.08
_PAGE_NUMBER = re.compile(r"^\W*(page\s*)?\d+(\s*(of|/)\s*\d+)?\W*$", re.IGNORECASE)
# Type this much larger than the body's, on a short line, is a heading.
_HEADING_SCALE = 1.15
_HEADING_MAX_CHARS = 150


@dataclass(frozen=True)
class _PdfLine:
    page: int
    text: str
    top: float
    bottom: float
    size: float  # the commonest character size on the line
    margin: bool  # in the top or bottom margin of its page
    right: float  # where the line ends


def _read_pdf(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    """Text rebuilt into paragraphs (pdfplumber's lines: line wraps joined, hyphenation at line ends
    undone), running headers, footers and page numbers dropped, larger type as headings; with the
    offset where each page begins."""
    import pdfplumber

    try:
        with pdfplumber.open(io.BytesIO(raw)) as pdf:
            lines = [
                line for number, page in enumerate(pdf.pages, start=1) for line in _pdf_lines(number, page)
            ]
            info = pdf.metadata or {}
            n_pages = len(pdf.pages)
    except MemoryError:  # over the reader's memory limit (qa/isolation.py), not a damaged file
        raise
    except Exception as error:  # pdfminer raises many kinds on damaged files
        raise CorpusError(path, f"unreadable PDF ({type(error).__name__})") from error
    body = _body_size(lines)
    pages_of: dict[str, set[int]] = {}  # each margin line's shape (digits aside): the pages it is on
    for line in lines:
        if line.margin:
            pages_of.setdefault(_shape(line.text), set()).add(line.page)
    kept = [line for line in lines if not _running(line, pages_of, body, n_pages)]
    sizes = sorted({round(ln.size) for ln in kept if _is_heading(ln, body)}, reverse=True)
    pitch = _line_pitch(kept)
    full = max((ln.right for ln in kept if not _is_heading(ln, body)), default=0.0)  # a full line's end
    parts: list[str] = []
    pages: list[int] = []
    length = 0
    previous: _PdfLine | None = None
    for line in kept:
        heading = _is_heading(line, body)
        if previous is None:
            joint = ""
        elif heading or _is_heading(previous, body) or _new_paragraph(previous, line, pitch, full):
            joint = "\n\n"
        elif previous.text[-1:] in "-\u2013" and previous.text[-2:-1].isalnum() and line.text[:1].isalnum():
            joint = ""  # broken at a hyphen or dash: "infesta-" + "tion", "gold-" + "themed", "21–" + "10"
            if previous.text.endswith("-") and _hyphenated(previous.text, line.text):
                parts[-1] = parts[-1][:-1]
                length -= 1
        else:
            joint = " "
        text = ("#" * (sizes.index(round(line.size)) + 1) + " " + line.text) if heading else line.text
        while len(pages) < line.page:  # pages without text start where the next text does
            pages.append(length + len(joint))
        parts.append(joint + text)
        length += len(joint) + len(text)
        previous = line
    title = str(info.get("Title") or "").strip() or next(
        (ln.text for ln in kept if _is_heading(ln, body)), None
    )
    return "".join(parts), {"title": title, "pages": pages}


def _pdf_lines(number: int, page: object) -> list[_PdfLine]:
    height = float(page.height)  # type: ignore[attr-defined]
    found = []
    lines = page.extract_text_lines(return_chars=True)  # type: ignore[attr-defined]
    page.close()  # type: ignore[attr-defined]  # its characters are not kept: memory is one page's
    for line in lines:
        text = " ".join(line["text"].split())
        if not text:
            continue
        sizes = [round(float(c["size"]), 1) for c in line["chars"]] or [0.0]
        top, bottom = float(line["top"]), float(line["bottom"])
        margin = bottom < height * _MARGIN or top > height * (1 - _MARGIN)
        size = max(set(sizes), key=sizes.count)
        found.append(_PdfLine(number, text, top, bottom, size, margin, float(line["x1"])))
    return found


def _body_size(lines: list[_PdfLine]) -> float:
    """The type size most of the text is set in."""
    weight: dict[float, int] = {}
    for line in lines:
        weight[line.size] = weight.get(line.size, 0) + len(line.text)
    return max(weight, key=weight.__getitem__) if weight else 0.0


def _shape(text: str) -> str:
    return re.sub(r"\d+", "#", text)


def _running(line: _PdfLine, pages_of: dict[str, set[int]], body: float, n_pages: int) -> bool:
    """A running header or footer: a margin line that is a page number, in smaller type than the
    body, or repeated (digits aside) on at least half of the pages."""
    if not line.margin:
        return False
    if _PAGE_NUMBER.match(line.text) or line.size < body:
        return True
    return n_pages > 1 and len(pages_of[_shape(line.text)]) * 2 >= n_pages


def _is_heading(line: _PdfLine, body: float) -> bool:
    return line.size >= body * _HEADING_SCALE and len(line.text) <= _HEADING_MAX_CHARS


def _hyphenated(line: str, following: str) -> bool:
    """Whether the hyphen ending ``line`` only breaks a word for the line end: English (wordfreq's
    table) uses the joined word more than the hyphenated one ("infestation", "development"), not
    less ("gold-themed", "well-known", "long-term")."""
    from wordfreq import zipf_frequency

    head, tail = re.search(r"(\w+)-$", line), re.match(r"\w+", following)
    if head is None or tail is None:
        return False
    first, second = head.group(1), tail.group(0)
    return zipf_frequency(first + second, "en") > zipf_frequency(f"{first}-{second}", "en")


def _line_pitch(lines: list[_PdfLine]) -> float:
    """The usual distance from one line's top to the next one's, within a paragraph."""
    steps = [b.top - a.top for a, b in zip(lines, lines[1:]) if a.page == b.page and b.top > a.top]
    return float(sorted(steps)[len(steps) // 2]) if steps else 0.0


def _new_paragraph(previous: _PdfLine, line: _PdfLine, pitch: float, full: float) -> bool:
    """More space above the line than between the lines of a paragraph; across a page, a previous
    line that ends a sentence short of the full width (a paragraph's last line)."""
    if line.page != previous.page:
        return previous.text[-1:] in '.!?:"\u201d' and previous.right < 0.9 * full
    return line.top - previous.top > 1.3 * pitch or line.top < previous.top


def _read_docx(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    """Word documents (python-docx): paragraphs in the Title and Heading styles become headings (by
    style, not by looks),
    list paragraphs list items, each table row a line of its cells."""
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(raw))
        blocks: list[tuple[str, str]] = []  # (kind, text)
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    cells = [" ".join(c.text.split()) for c in row.cells]
                    if any(cells):
                        blocks.append(("row", " | ".join(cells)))
                continue
            text = " ".join(item.text.split())
            style = item.style.name if item.style is not None else ""
            # The Title style is the outermost heading, Heading 1 the next level down, and so on.
            heading = re.match(r"Heading (\d)", style)
            level = 1 if style == "Title" else int(heading.group(1)) + 1 if heading else 0
            if not text:
                continue
            if level:
                blocks.append(("heading", "#" * min(level, 6) + " " + text))
            elif style.startswith("List"):
                blocks.append(("item", "- " + text))
            else:
                blocks.append(("paragraph", text))
        title = document.core_properties.title
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise CorpusError(path, f"unreadable Word document ({type(error).__name__})") from error
    text = ""
    for i, (kind, block) in enumerate(blocks):
        together = i > 0 and kind in ("item", "row") and blocks[i - 1][0] == kind  # one list, one table
        text += ("\n" if together else "\n\n" if text else "") + block
    first_heading = next((b.lstrip("# ") for k, b in blocks if k == "heading"), None)
    return text, {"title": (title or "").strip() or first_heading}


_FAQ_FIELDS = ("question", "answer")


def _read_faq(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    """An FAQ list: CSV with question and answer columns, or JSON lines with question and answer
    fields. Each question becomes a section heading and its answer the section: the answer is what
    is cited, the question what retrieval matches it by."""
    decoded = _decoded(path, raw)
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(decoded))
        names = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        if not all(field in names for field in _FAQ_FIELDS):
            raise CorpusError(path, "an FAQ file needs a header row with question and answer columns")
        rows = [(n, {f: row.get(names[f]) for f in _FAQ_FIELDS}) for n, row in enumerate(reader, start=2)]
    else:
        for n, line in enumerate(decoded.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(path, f"line {n} is not JSON ({error.msg})") from error
            if not isinstance(row, dict):
                raise CorpusError(path, f"line {n}: expected an object with question and answer")
            rows.append((n, row))
    sections = []
    for n, row in rows:
        question, answer = (row.get(f) for f in _FAQ_FIELDS)
        if not any(isinstance(v, str) and v.strip() for v in (question, answer)):
            continue  # a blank row
        if not (
            isinstance(question, str) and question.strip() and isinstance(answer, str) and answer.strip()
        ):
            raise CorpusError(path, f"line {n}: needs both a question and an answer (text)")
        sections.append(f"## {' '.join(question.split())}\n\n{answer.strip()}")
    return "\n\n".join(sections), {}


Reader = Callable[[Path, bytes], tuple[str, dict[str, object]]]
# Suffix -> (format name, reader of the file's bytes into its text and metadata). A new format is
# one entry here and one function.
READERS: dict[str, tuple[str, Reader]] = {
    ".md": ("markdown", _read_markdown),
    ".markdown": ("markdown", _read_markdown),
    ".txt": ("text", _read_text),
    ".html": ("html", _read_html),
    ".htm": ("html", _read_html),
    ".pdf": ("pdf", _read_pdf),
    ".docx": ("docx", _read_docx),
    ".csv": ("faq", _read_faq),
    ".jsonl": ("faq", _read_faq),
}
# Formats whose compressed content can cost far more than the file's size to read: each file is read
# in a child process with a time and a memory limit (qa/isolation.py).
CONTAINED = frozenset({"pdf", "docx"})
# Formats whose text marks section headings with Markdown's "#" lines (all but plain text).
HEADED_FORMATS = frozenset(fmt for fmt, _ in READERS.values()) - {"text"}
SUFFIXES = tuple(READERS)
