"""Undo by call: a copy of the scene taken before each scene-changing job, so that one call's changes
can be reverted later (`blender_undo_job`), and the audit trail of who changed what
(`blender_list_changes`).

A checkpoint is the whole file as Blender saves it (`wm.save_as_mainfile(copy=True)`), kept in the
peer's state folder; reverting opens it again. It is taken only where that is safe: a headless
peer, whose file nobody else edits. Blender's GUI keeps its own undo history instead (each call is
one step named after it). Checkpoints are bounded per peer in count (preference `undo_checkpoints`)
and in bytes (MAX_BYTES); the oldest go first. bpy-free: the runtime saves and opens files.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .revisions import SceneConflict, SceneLog

MAX_BYTES = 1024 * 1024 * 1024
"""Checkpoint bytes kept per peer at most, whatever the count allows."""


@dataclass
class Checkpoint:
    job_id: str
    command: str
    path: Path
    before: int
    """The revision the job began at: what reverting it brings back."""
    after: int | None = None
    """The revision the job left; None while it runs."""
    size: int = 0


class History:
    """A peer's checkpoints, oldest first. `save(path)` writes the scene to a file and `load(path)`
    replaces the scene with one (None: this peer keeps no checkpoints)."""

    def __init__(self, folder: Path, scene: SceneLog, keep: Callable[[], int],
                 save: Callable[[Path], None] | None, load: Callable[[Path], None] | None) -> None:
        self.folder, self.scene, self.keep, self._save, self._load = folder, scene, keep, save, load
        self._kept: OrderedDict[str, Checkpoint] = OrderedDict()
        self._taken = 0
        for stale in folder.glob("checkpoint-*.blend"):  # a previous process's: their jobs are gone
            stale.unlink(missing_ok=True)

    @property
    def enabled(self) -> bool:
        return self._save is not None and self.keep() > 0

    def take(self, job_id: str, command: str) -> None:
        """The scene before `job_id` runs, kept until the bounds push it out."""
        if not self.enabled:
            return
        assert self._save is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        self._taken += 1
        path = self.folder / f"checkpoint-{self._taken}.blend"
        self._save(path)
        self._kept[job_id] = Checkpoint(job_id, command, path, self.scene.revision, size=path.stat().st_size)
        self._trim()

    def ended(self, job_id: str) -> None:
        checkpoint = self._kept.get(job_id)
        if checkpoint is not None:
            checkpoint.after = self.scene.revision

    def _trim(self) -> None:
        while self._kept and (len(self._kept) > self.keep() or sum(c.size for c in self._kept.values()) > MAX_BYTES):
            self._drop(next(iter(self._kept)))

    def _drop(self, job_id: str) -> None:
        self._kept.pop(job_id).path.unlink(missing_ok=True)

    def undo(self, job_id: str, cascade: bool = False) -> dict[str, Any]:
        """Revert what `job_id` changed: only if nothing changed after it, or with `cascade` together
        with everything after it. SceneConflict says what is in the way; LookupError that there is
        nothing to revert."""
        if self._save is None or self._load is None:
            raise LookupError("this peer keeps no checkpoints (Blender's GUI: use Edit > Undo History, where each"
                              " call is one step named after its command)")
        checkpoint = self._kept.get(job_id)
        if checkpoint is None:
            raise LookupError(f"no checkpoint for job {job_id!r}: it changed nothing in this scene, was reverted"
                              f" already, or is older than the {self.keep()} kept (preference 'undo_checkpoints')")
        if checkpoint.after is None:
            raise LookupError(f"job {job_id!r} is still running; cancel it first")
        running = self.scene.job_id  # this undo's own checkpoint: undoing it is a redo
        later = [c for c in self._kept.values() if c.before >= checkpoint.after and c.job_id not in (job_id, running)]
        if self.scene.revision != checkpoint.after and not cascade:
            raise SceneConflict(since=checkpoint.after, message=(
                f"the scene changed after job {job_id!r} (revision {checkpoint.after} -> {self.scene.revision});"
                " nothing was reverted. Pass cascade=true to revert it and everything after it"))
        reverted = self.scene.changes_since(checkpoint.before)
        loaded_at = self.scene.revision
        self._load(checkpoint.path)
        if self.scene.revision == loaded_at:  # the runtime saw no update: a whole other scene all the same
            self.scene.moved()
        for done in [checkpoint, *later]:
            self._drop(done.job_id)
        for kept in self._kept.values():  # the job that left the scene as it is again can be undone again
            if kept.after == checkpoint.before:
                kept.after = self.scene.revision
        return {"reverted": job_id, "command": checkpoint.command, "also_reverted": [c.job_id for c in later],
                "changes_reverted": reverted}

    def changes(self, since: int = 0) -> list[dict[str, Any]]:
        """The recent moves after revision `since`, newest last: who (job and command, or outside for
        the GUI) changed which objects."""
        return self.scene.moves_since(since)
