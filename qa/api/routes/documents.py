"""The served corpus: documents, passages and sample questions."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from qa.api.deps import IndexDep
from qa.api.schemas import DocumentList, DocumentOut, DocumentSummary, PassageOut, Problem, Suggestions
from qa.errors import NotFound, quoted

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=DocumentList, summary="List the documents")
def list_documents(
    index: IndexDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DocumentList:
    """Documents in the served index with their metadata, in id order, paginated."""
    ids = sorted(index.documents)
    page = [index.documents[i] for i in ids[offset : offset + limit]]
    return DocumentList(
        total=len(ids),
        offset=offset,
        limit=limit,
        documents=[
            DocumentSummary(
                **d.to_json(), chars=len(d.text), passages=len(index.by_document.get(d.doc_id, []))
            )
            for d in page
        ],
    )


@router.get(
    "/documents/{doc_id}",
    response_model=DocumentOut,
    responses={404: {"model": Problem}},
    summary="One document",
)
def get_document(doc_id: str, index: IndexDep) -> DocumentOut:
    document = index.documents.get(doc_id)
    if document is None:
        raise NotFound(f"no document with id {quoted(doc_id)}")
    return DocumentOut(**document.to_json(), passages=index.by_document.get(doc_id, []))


@router.get(
    "/passages/{passage_id}",
    response_model=PassageOut,
    responses={404: {"model": Problem}},
    summary="One passage",
)
def get_passage(passage_id: str, index: IndexDep) -> PassageOut:
    position = index.positions.get(passage_id)
    if position is None:
        raise NotFound(f"no passage with id {quoted(passage_id)}")
    passage = index.passages[position]
    document = index.documents[passage.doc_id]
    return PassageOut(
        **asdict(passage), title=document.title, source=document.source, page=document.page_at(passage.start)
    )


@router.get("/suggestions", response_model=Suggestions, summary="Sample questions")
def suggestions(index: IndexDep) -> Suggestions:
    """Sample questions for the web page: section headings of the corpus that are questions, written
    as a person would ask them ("What is the national AI task force?", not Title Case)."""
    seen: dict[str, str] = {}  # heading -> its document
    for passage in index.passages:
        for heading in passage.heading.split(" › "):
            if heading.endswith("?") and len(seen) < 6:
                seen.setdefault(heading, passage.doc_id)
    texts = " ".join(index.documents[d].text for d in set(seen.values()))
    return Suggestions(questions=[sentence_case(h, texts) for h in seen])


_WORD = re.compile(r"[^\W\d_][\w’'-]*")


def sentence_case(heading: str, text: str) -> str:
    """A Title Case heading in sentence case: a capitalised word after the first keeps its capital
    only when the text writes it so more often than in lower case (names: "Russia", "Putin");
    acronyms stay."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    forms = Counter(_WORD.findall(body))  # as the text writes each word, its headings aside
    words = heading.split(" ")
    for i, word in enumerate(words[1:], start=1):
        match = _WORD.search(word)
        if match is None:
            continue
        bare = match.group(0)
        if bare[0].isupper() and not bare.isupper() and forms[bare] <= forms[bare.lower()]:
            words[i] = word.replace(bare, bare.lower(), 1)
    return " ".join(words)
