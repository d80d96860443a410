"""Markdown (.md, .markdown) with YAML front matter (python-frontmatter's format, read with limits)."""

from __future__ import annotations

from pathlib import Path

import frontmatter
import yaml

from qa.errors import CorpusError
from qa.readers.base import Metadata
from qa.readers.text import decoded

# Front matter is a few key: value lines: a large one (or one with YAML aliases) is an attack, not
# metadata. (The limit on a whole file is the setting QA_MAX_DOCUMENT_BYTES.)
MAX_FRONT_MATTER_BYTES = 16 * 2**10


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: front matter needs neither, and nested aliases expand
    exponentially (a "billion laughs" document of one line)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def read_markdown(path: Path, raw: bytes) -> tuple[str, Metadata]:
    # As python-frontmatter's parse(), with limits before the YAML is loaded.
    text = decoded(path, raw).strip()
    handler = frontmatter.YAMLHandler()
    if not handler.detect(text):
        return text, Metadata()
    try:
        front, content = handler.split(text)
    except ValueError:  # an opening fence without a closing one: no front matter
        return text, Metadata()
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
    return content.strip(), Metadata.of(metadata)
