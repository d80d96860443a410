"""Documents: a corpus folder (.md, .txt, .html, .pdf, .docx, FAQ lists as .csv or .jsonl) scanned,
read by the reader of each file's format (qa/readers/) and checked, into texts with stable ids and
metadata; and the fingerprint of the bytes they came from."""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qa.errors import BuildCancelled, CorpusError, NotFound, quoted
from qa.isolation import ParseLimits, read_contained
from qa.readers import CONTAINED, READERS, SUFFIXES
from qa.readers.text import encoding_of

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
    encoding: str | None = None  # the encoding a text file was read in, when not UTF-8 (a guess)
    # Other front-matter fields ("department: ops"), as text: questions can be filtered on them.
    metadata: dict[str, str] = field(default_factory=dict)

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset``, for a paged document (None otherwise)."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None

    @property
    def content_hash(self) -> str:
        """Hash of what retrieval sees: text and metadata (an edit of either re-embeds the document)."""
        fields = [self.doc_id, self.title, self.source, self.published, self.text]
        # Other fields count only when there are some: the hashes of documents without stay as they were.
        payload = json.dumps([*fields, sorted(self.metadata.items())] if self.metadata else fields)
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
    link to a file elsewhere (``/etc/passwd``) is skipped, so is anything but a regular file. An
    index folder inside it (``qa index`` run there with the default ``index``) is skipped whole: its
    files are not documents, and reading them would make every build change the corpus.
    """
    if not corpus_dir.is_dir():
        raise CorpusError(corpus_dir, "corpus folder does not exist")
    root = corpus_dir.resolve()
    files, skipped = [], []
    indexes: list[Path] = []
    for path in sorted(corpus_dir.rglob("*")):  # a folder comes before what it holds
        relative = path.relative_to(corpus_dir)
        if any(part.startswith((".", "_")) for part in relative.parts):
            continue
        if any(relative.is_relative_to(index) for index in indexes):
            continue
        try:
            if path.is_dir():
                if _is_index_folder(path):
                    indexes.append(relative)
                    skipped.append(
                        f"{relative.as_posix()}/: an index folder (`qa index` writes them), not documents"
                    )
                continue
            if path.suffix.lower() not in SUFFIXES:
                skipped.append(f"{relative.as_posix()}: not a format qa reads ({', '.join(SUFFIXES)})")
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


def _is_index_folder(path: Path) -> bool:
    from qa.store.folder import IndexFolder  # here: the store reads documents through this module

    return IndexFolder(path).exists()


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
    if not text.strip():
        raise CorpusError(path, "document is empty")
    if not any(character.isalnum() for character in text):
        raise CorpusError(path, "document has no words (only spaces, punctuation or control characters)")
    doc_id = meta.id or _id_from_path(relative)
    if not ID_PATTERN.match(doc_id):
        raise CorpusError(path, f"invalid id {doc_id!r}: use letters, digits, '.', '_' and '-'")
    title = meta.title or _title_from_text(text, fmt) or Path(relative).stem
    return Document(
        doc_id=doc_id,
        title=title.strip(),
        source=meta.source,
        published=meta.published,
        text=text,
        path=relative,
        format=fmt,
        pages=meta.pages,
        encoding=None if fmt in CONTAINED else encoding_of(raw),
        metadata=dict(meta.extra),
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


# Documents through the API and the library: written into the corpus folder as Markdown files, so
# that the folder stays the one source of the index (a build reads it as any other file).


@dataclass(frozen=True)
class DocumentEdit:
    """One change to the corpus folder, undoable: the file and what it held before (None: nothing)."""

    path: Path
    before: bytes | None

    def undo(self) -> None:
        if self.before is None:
            self.path.unlink(missing_ok=True)
        else:
            _write_atomically(self.path, self.before)


def put_document(
    corpus_dir: Path,
    doc_id: str,
    text: str,
    current_path: str | None,
    title: str | None = None,
    source: str | None = None,
    published: str | None = None,
) -> DocumentEdit:
    """Write ``<doc_id>.md`` (front matter and text) into the corpus folder, or over the Markdown
    file the document ``doc_id`` comes from (``current_path``); a document read from a file of
    another format cannot be replaced this way (CorpusError naming it)."""
    if not ID_PATTERN.match(doc_id):
        raise CorpusError(doc_id, "invalid id: use letters, digits, '.', '_' and '-'")
    relative = current_path or f"{doc_id}.md"
    if Path(relative).suffix.lower() not in (".md", ".markdown"):
        raise CorpusError(
            relative,
            f"document {doc_id!r} is read from this file: replace the file itself "
            f"(PUT /admin/documents/{doc_id}/file?format=...)",
        )
    path = corpus_dir / relative
    front = {
        "id": doc_id,
        **{k: v for k, v in (("title", title), ("source", source), ("published", published)) if v},
    }
    content = (
        "---\n" + yaml.safe_dump(front, allow_unicode=True, sort_keys=False) + "---\n\n" + text.strip() + "\n"
    )
    edit = DocumentEdit(path, path.read_bytes() if path.exists() else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, content.encode("utf-8"))
    return edit


@dataclass(frozen=True)
class Edits:
    """Several changes to the corpus folder, undone together (last first)."""

    edits: tuple[DocumentEdit, ...]

    def undo(self) -> None:
        for edit in reversed(self.edits):
            edit.undo()


def put_file(corpus_dir: Path, doc_id: str, suffix: str, raw: bytes, current_path: str | None) -> Edits:
    """Write a file of any readable format as ``<doc_id><suffix>`` into the corpus folder (its id
    is then its name); the file the document ``doc_id`` came from before (``current_path``), if
    another, is removed with it."""
    suffix = suffix.lower()
    if suffix not in READERS:
        raise CorpusError(
            f"{doc_id}{suffix}", f"not a format the service reads (one of {', '.join(READERS)})"
        )
    if not ID_PATTERN.match(doc_id) or _id_from_path(f"{doc_id}{suffix}") != doc_id:
        raise CorpusError(doc_id, "invalid id: use letters, digits, '.', '_' and '-'")
    path = corpus_dir / f"{doc_id}{suffix}"
    edits = [DocumentEdit(path, path.read_bytes() if path.exists() else None)]
    _write_atomically(path, raw)
    if current_path is not None and corpus_dir / current_path != path:
        old = corpus_dir / current_path
        edits.append(DocumentEdit(old, old.read_bytes()))
        old.unlink()
    return Edits(tuple(edits))


def delete_document(corpus_dir: Path, doc_id: str, on_record: dict[str, str]) -> DocumentEdit:
    """Remove the file a document comes from (``on_record``: each indexed document's file);
    NotFound for an id not on record."""
    if doc_id not in on_record:
        raise NotFound(f"no document with id {quoted(doc_id)}")
    path = corpus_dir / on_record[doc_id]
    edit = DocumentEdit(path, path.read_bytes())
    path.unlink()
    return edit


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # hidden: a build never reads it
    tmp.write_bytes(content)
    os.replace(tmp, path)
