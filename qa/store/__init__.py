"""The index store: the layout on disk and its typed manifest (``format``), writing a build
(``writer``), reading it back (``loader``) into a ``LoadedIndex`` (``loaded``), the index folder's
life — current build, earlier builds, lock, publishing, calibration (``folder``) — and whether a build
serves this configuration (``policy``). qa/builder.py decides what a build holds; this package
stores it."""

from qa.store.folder import IndexFolder
from qa.store.format import FORMAT_VERSION, Manifest, file_records, retrieval_text, shard_folder, shard_of
from qa.store.loaded import CandidateView, Catalog, LoadedIndex
from qa.store.loader import load_index, load_shard
from qa.store.policy import (
    calibration_for,
    check,
    check_compatible,
    keyword_settings,
    splitter_settings,
    staleness,
)
from qa.store.writer import BuildContent, store_vectors, write_build

__all__ = [
    "FORMAT_VERSION",
    "BuildContent",
    "CandidateView",
    "Catalog",
    "IndexFolder",
    "LoadedIndex",
    "Manifest",
    "calibration_for",
    "check",
    "check_compatible",
    "file_records",
    "keyword_settings",
    "load_index",
    "load_shard",
    "retrieval_text",
    "shard_folder",
    "shard_of",
    "splitter_settings",
    "staleness",
    "store_vectors",
    "write_build",
]
