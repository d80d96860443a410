"""The index folder's life as one object: which build is current, the builds kept before it, the
writers' lock, publishing a new build atomically, the manifest read and rewritten, and the checks
that a build's files are as it wrote them."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import ValidationError

from qa.errors import REBUILD_ADVICE, IndexBusy, IndexCorrupt, IndexMismatch, IndexMissing
from qa.store.format import FORMAT_VERSION, Manifest, file_records, first_error

KEEP_BUILDS = 2  # the current build and the one before it (a running server may still hold it)


class IndexFolder:
    """``index_dir``: ``current`` (a symlink to the served build), ``builds/``, ``.lock``."""

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir

    @property
    def current(self) -> Path:
        return self.path / "current"

    def exists(self) -> bool:
        """Whether the folder has this layout (``builds/`` and the ``current`` link)."""
        return (self.path / "builds").is_dir() and self.current.is_symlink()

    def earlier_builds(self) -> list[Path]:
        """The builds kept besides the current one, newest first (their names begin with the time)."""
        current = self.current.resolve()
        folder = self.path / "builds"
        found = [b.resolve() for b in folder.iterdir() if b.is_dir()] if folder.is_dir() else []
        return sorted((b for b in found if b != current), key=lambda b: b.name, reverse=True)

    def stamp(self) -> tuple[Path, int] | None:
        """Which build ``current`` points to and when its manifest last changed (a new build, or new
        thresholds from `qa calibrate`); None without one."""
        build = self.current.resolve()
        try:
            return build, (build / "manifest.json").stat().st_mtime_ns
        except OSError:
            return None

    def shown(self, path: Path) -> str:
        """A file of the index as messages name it: relative to the index folder, through
        ``current`` to the build it is (no absolute paths in HTTP responses)."""
        try:
            return path.resolve().relative_to(self.path.resolve()).as_posix()
        except ValueError:
            return path.name

    def read_manifest(self, folder: Path | None = None) -> Manifest:
        """The current build's manifest (or that of ``folder``, a build or a shard of one), checked
        field by field; IndexCorrupt names what is wrong."""
        path = (folder or self.current) / "manifest.json"
        if not path.exists() and folder is not None:
            raise IndexCorrupt(self.shown(path), "missing")
        if not path.exists():
            raise IndexMissing(self.path)
        shown = self.shown(path)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise IndexCorrupt(shown, str(error)) from error
        if not isinstance(manifest, dict):
            raise IndexCorrupt(shown, "not a JSON object")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatch(
                f"index format {manifest.get('format_version')} is not {FORMAT_VERSION}{REBUILD_ADVICE}"
            )
        try:
            return Manifest.model_validate(manifest)
        except ValidationError as error:
            raise IndexCorrupt(shown, first_error(error)) from error

    def verify_sizes(self, build: Path, manifest: Manifest) -> None:
        for name, record in manifest.files.items():
            file = build / name
            try:
                size = file.stat().st_size
            except OSError:
                raise IndexCorrupt(self.shown(file), "missing") from None
            if size != record.bytes:
                raise IndexCorrupt(self.shown(file), f"{size} bytes, the build wrote {record.bytes}")

    def verify_checksums(self, manifest: Manifest, build: Path | None = None) -> None:
        """Every file of ``build`` (default: the current one) as it was written: same size and
        SHA-256 (reads the whole build)."""
        build = (build or self.current).resolve()
        found = file_records(build)
        for name in manifest.files:
            if name not in found and (build / name).exists():
                raise IndexCorrupt(self.shown(build / name), "listed in the manifest, but not a file")
        self.verify_sizes(build, manifest)
        for name, record in manifest.files.items():
            if found[name]["sha256"] != record.sha256:
                raise IndexCorrupt(
                    self.shown(build / name), "its checksum differs from the one the build wrote"
                )

    def lock(self) -> FileLock:
        """The lock a writer of the index folder holds: one build or manifest change at a time."""
        return FileLock(str(self.path / ".lock"))

    def acquire(self, timeout: float) -> FileLock:
        """The writers' lock, held (IndexBusy after ``timeout`` seconds of another writer)."""
        lock = self.lock()
        try:
            lock.acquire(timeout=timeout)
        except Timeout as error:
            raise IndexBusy(
                f"another `qa index` is building {self.path} (lock {self.path / '.lock'}); try again later"
            ) from error
        return lock

    @staticmethod
    def rewrite_manifest(build: Path, manifest: dict[str, Any]) -> None:
        """Replace a build's manifest atomically (a reader sees the old one or the new one)."""
        tmp = build / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, build / "manifest.json")

    def save_calibration(self, calibration: dict[str, Any]) -> None:
        """Store what `qa calibrate` fitted (``{"model": ..., "thresholds": {...}, ...}``) in the
        current build's manifest."""
        with self.lock().acquire(timeout=60):
            manifest = self.read_manifest().to_json()
            manifest["calibration"] = calibration
            self.rewrite_manifest(self.current.resolve(), manifest)

    def publish(self, fingerprint: str, write: Callable[[Path], None], check: Callable[[], None]) -> Path:
        """Write a build (``write`` fills a temporary folder), then rename it into ``builds/`` and
        repoint ``current`` — unless ``check`` raises (a cancelled build) before: then nothing is
        published. The builds beyond ``KEEP_BUILDS`` are removed."""
        check()
        builds = self.path / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.path))
        try:
            write(tmp)
            check()
            final = builds / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{fingerprint[:8]}"
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._point_current(final)
        self._prune()
        return final

    def _point_current(self, build: Path) -> None:
        tmp_link = self.path / f".current-{os.getpid()}"
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        tmp_link.symlink_to(build.relative_to(self.path))
        os.replace(tmp_link, self.current)  # atomic: readers see the old build or the new one

    def _prune(self) -> None:
        """Keep the newest builds and no temporary folders."""
        current = self.current.resolve()
        # Resolved paths throughout: with a relative index folder, ``iterdir`` gives relative ones.
        builds = sorted((b.resolve() for b in (self.path / "builds").iterdir()), reverse=True)
        keep = {current, *builds[:KEEP_BUILDS]}
        for build in builds:
            if build not in keep:
                shutil.rmtree(build, ignore_errors=True)
        for leftover in self.path.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
