"""Documents: load a corpus folder (.md, .txt, .html, .pdf) into texts with stable ids and metadata."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import frontmatter
import yaml

from qa.errors import CorpusError

log = logging.getLogger(__name__)

# Front matter is a few key: value lines: a large one (or one with YAML aliases) is an attack, not
# metadata. (The limit on a whole file is the setting QA_MAX_DOCUMENT_BYTES.)
MAX_FRONT_MATTER_BYTES = 16 * 2**10
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
    format: str  # "markdown", "text", "html" or "pdf"

    @property
    def content_hash(self) -> str:
        """Hash of what retrieval sees: text and metadata (an edit of either re-embeds the document)."""
        payload = json.dumps([self.doc_id, self.title, self.source, self.published, self.text])
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, object]:
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
        if path.is_dir():
            continue
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            skipped.append(f"{relative.as_posix()}: a link to a file outside the corpus folder")
        elif not resolved.is_file():
            skipped.append(f"{relative.as_posix()}: not a regular file")
        else:
            files.append(path)
    return files, skipped


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
        stat = path.stat()
        known = memo.get(path) if memo is not None else None
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns):
            file_digest = known[2]
        else:
            file_digest = hashlib.sha256(_read_bytes(path)).digest()
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


def read_corpus(corpus_dir: Path, max_bytes: int | None = None) -> Corpus:
    """Every document, and the corpus fingerprint of exactly the bytes they were parsed from (each
    file is read once). A file over ``max_bytes`` is refused before it is read; each file skipped
    is logged."""
    documents: list[Document] = []
    digests: list[tuple[str, bytes]] = []
    seen: dict[str, str] = {}
    files, skipped = scan_corpus(corpus_dir)
    for reason in skipped:
        log.warning("skipped %s", reason)
    for path in files:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise CorpusError(
                path,
                f"{size / 2**20:.1f} MiB is over the limit of {max_bytes / 2**20:.1f} MiB a document "
                "(QA_MAX_DOCUMENT_BYTES); split it into several files or raise the limit",
            )
        raw = _read_bytes(path)
        document = read_document(path, corpus_dir, raw)
        if document.doc_id in seen:
            raise CorpusError(
                path, f"duplicate document id {document.doc_id!r} (also used by {seen[document.doc_id]})"
            )
        seen[document.doc_id] = document.path
        documents.append(document)
        digests.append((document.path, hashlib.sha256(raw).digest()))
    if not documents:
        raise CorpusError(corpus_dir, f"no documents ({', '.join(SUFFIXES)}) found")
    return Corpus(documents, _combine(digests), skipped)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CorpusError(path, f"cannot be read ({error.strerror or error})") from error


def read_document(path: Path, corpus_dir: Path, raw: bytes) -> Document:
    """Parse one file's bytes with the reader of its suffix (``READERS``)."""
    relative = path.relative_to(corpus_dir).as_posix()
    fmt, reader = READERS[path.suffix.lower()]
    text, meta = reader(path, raw)
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


def _read_text(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    return _decoded(path, raw), {}


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


def _read_html(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    import trafilatura  # imported here: only HTML corpora pay for it

    extracted = trafilatura.bare_extraction(_decoded(path, raw), with_metadata=True, include_comments=False)
    if extracted is None:
        raise CorpusError(path, "no main text found in the HTML page")
    data = extracted.as_dict() if hasattr(extracted, "as_dict") else dict(extracted)
    meta = {"title": data.get("title"), "source": data.get("url"), "published": data.get("date")}
    return data.get("text") or "", meta


def _read_pdf(path: Path, raw: bytes) -> tuple[str, dict[str, object]]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
    except (PdfReadError, ValueError, KeyError) as error:
        raise CorpusError(path, f"unreadable PDF ({error})") from error
    return "\n\n".join(pages), {"title": info.get("/Title")}


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
}
SUFFIXES = tuple(READERS)
