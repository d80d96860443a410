"""Domain errors. Raised inside the package; translated to HTTP statuses or CLI exits at the edges."""

from __future__ import annotations

from pathlib import Path

ECHO_CHARS = 64  # the most of a client's input an error message repeats
# How a message about an unusable index ends; `qa index` itself leaves it off (it is that rebuild).
REBUILD_ADVICE = "; rebuild it with `qa index`"


def quoted(value: str) -> str:
    """A client's input as an error message shows it: quoted, cut at ``ECHO_CHARS``, printable."""
    shown = value if len(value) <= ECHO_CHARS else value[:ECHO_CHARS] + "…"
    return repr(shown.encode("utf-8", "backslashreplace").decode("utf-8"))


class QAError(Exception):
    """Base class: every error the service reports to a user on purpose."""


class CorpusError(QAError):
    """A corpus file cannot be used; names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class IndexMissing(QAError):
    """No index has been built in the index directory."""

    def __init__(self, index_dir: Path) -> None:
        super().__init__(f"no index in {index_dir}; build it with `qa index`")


class IndexMismatch(QAError):
    """The index was built with another model, dimension or format than the one configured."""


class IndexCorrupt(QAError):
    """An index file is unreadable or inconsistent with the manifest."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"index file {path} is unusable: {problem}{REBUILD_ADVICE}")
        self.path = str(path)


class ServingDamaged(QAError):
    """The build being served turned out damaged while answering, and no earlier build is intact."""


class BuildCancelled(QAError):
    """A build stopped before publishing anything because the service is shutting down."""


class IndexBusy(QAError):
    """Another build holds the index lock."""


class NotFound(QAError):
    """An unknown document or passage id."""


class ScopeEmpty(NotFound):
    """A question's filter matches no document of the index."""
