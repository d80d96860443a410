"""The served corpus: documents, passages and sample questions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from qa.api.deps import IndexDep
from qa.errors import NotFound
from qa.schemas import DocumentList, DocumentOut, DocumentSummary, PassageOut, Problem, Suggestions

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=DocumentList)
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


@router.get("/documents/{doc_id}", response_model=DocumentOut, responses={404: {"model": Problem}})
def get_document(doc_id: str, index: IndexDep) -> DocumentOut:
    document = index.documents.get(doc_id)
    if document is None:
        raise NotFound(f"no document with id {doc_id!r}")
    return DocumentOut(**document.to_json(), passages=index.by_document.get(doc_id, []))


@router.get("/passages/{passage_id}", response_model=PassageOut, responses={404: {"model": Problem}})
def get_passage(passage_id: str, index: IndexDep) -> PassageOut:
    position = index.positions.get(passage_id)
    if position is None:
        raise NotFound(f"no passage with id {passage_id!r}")
    passage = index.passages[position]
    document = index.documents[passage.doc_id]
    return PassageOut(
        **asdict(passage), title=document.title, source=document.source, page=document.page_at(passage.start)
    )


@router.get("/suggestions", response_model=Suggestions)
def suggestions(index: IndexDep) -> Suggestions:
    """Sample questions for the web page: section headings of the corpus phrased as questions."""
    seen: dict[str, None] = {}
    for passage in index.passages:
        for heading in passage.heading.split(" › "):
            if heading.endswith("?") and len(seen) < 6:
                seen.setdefault(heading, None)
    return Suggestions(questions=list(seen))
