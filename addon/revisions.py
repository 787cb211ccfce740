"""The scene's revision: a number every change to the scene moves, whoever made it (an LLM's call,
another user's, the artist in the GUI), and a short log of what each move changed.

Reads carry the revision; a scene-changing call may name the revision it was based on
(`expect_revision`), and the peer refuses it with status `conflict` and what moved since when the
scene is no longer there, instead of letting it overwrite work it never saw. bpy-free: the Blender
runtime feeds it depsgraph updates, the Python test peer one move per scene-changing command.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from blendbus.protocol import MAX_CHANGED_NAMES

KEPT_MOVES = 1000
"""Moves remembered: a conflict older than that says what it can and that the rest is older."""


class SceneConflict(Exception):
    """A handler's answer that the scene is not where its call expected: the job ends `conflict`,
    with what moved the scene after revision `since`."""

    def __init__(self, since: int, message: str) -> None:
        super().__init__(message)
        self.since, self.message = since, message


@dataclass(frozen=True)
class Move:
    revision: int
    added: frozenset[str]
    removed: frozenset[str]
    modified: frozenset[str]
    job_id: str | None
    """The job that was running when the scene moved; None for a change from outside (the GUI)."""
    command: str | None = None


class SceneLog:
    """The revision and its recent moves. `names` lists the scene's objects now (None: this peer cannot
    tell, and moves name no objects added or removed)."""

    def __init__(self, names: Callable[[], Iterable[str]] | None = None) -> None:
        self.revision = 0
        self.job_id: str | None = None
        """The job running now, which a move is put down to."""
        self.command: str | None = None
        """Its command (job_dispatch for a raw script)."""
        self._names = names
        self._known: set[str] = set(names()) if names is not None else set()
        self._moves: deque[Move] = deque(maxlen=KEPT_MOVES)

    def moved(self, modified: Iterable[str] = ()) -> None:
        """The scene changed: `modified` names the objects a depsgraph update touched."""
        added: set[str] = set()
        removed: set[str] = set()
        if self._names is not None:
            now = set(self._names())
            added, removed, self._known = now - self._known, self._known - now, now
        self.revision += 1
        self._moves.append(Move(self.revision, frozenset(added), frozenset(removed),
                                frozenset(modified) - added - removed, self.job_id,
                                self.command if self.job_id else None))

    def objects_changed(self) -> bool:
        """Whether objects were added or removed since the last move (a change no update flag reports)."""
        return self._names is not None and set(self._names()) != self._known

    def changes_since(self, revision: int) -> dict[str, Any]:
        """What moved the scene after `revision`: object names added, removed and modified (net, each
        list capped at MAX_CHANGED_NAMES), the number of moves, and `older: N` when the log no
        longer reaches back to `revision` (N moves it cannot name). A revision this scene never had
        (a peer that restarted counts from 0 again, or another peer's) is `unknown: true`."""
        if revision > self.revision:
            return {"moves": 0, "unknown": True}
        moves = [m for m in self._moves if m.revision > revision]
        added: set[str] = set()
        removed: set[str] = set()
        modified: set[str] = set()
        for move in moves:
            for name in move.added:
                if name in removed:  # deleted, then made again under the same name
                    removed.discard(name)
                    modified.add(name)
                else:
                    added.add(name)
            for name in move.removed:
                if name in added:
                    added.discard(name)
                else:
                    removed.add(name)
                modified.discard(name)
            modified |= move.modified - added - removed
        out: dict[str, Any] = {"moves": self.revision - revision}
        for key, names in (("added", added), ("removed", removed), ("modified", modified)):
            if names:
                out[key] = sorted(names)[:MAX_CHANGED_NAMES]
        outside = sum(1 for m in moves if m.job_id is None)
        if outside:
            out["outside"] = outside  # moves no call made: the artist in the GUI, or a script of its own
        if self._moves and revision < self._moves[0].revision - 1:
            out["older"] = self._moves[0].revision - 1 - revision
        return out

    def moves_since(self, revision: int) -> list[dict[str, Any]]:
        """Each remembered move after `revision`, oldest first: the audit trail of who changed what."""
        out = []
        for move in self._moves:
            if move.revision <= revision:
                continue
            entry: dict[str, Any] = {"revision": move.revision, "job_id": move.job_id, "command": move.command}
            for key in ("added", "removed", "modified"):
                names = getattr(move, key)
                if names:
                    entry[key] = sorted(names)[:MAX_CHANGED_NAMES]
            out.append(entry)
        return out

    def account(self, since: int | None = None) -> dict[str, Any]:
        """The scene as a reply reports it: the revision, and what moved it after `since` if given."""
        out: dict[str, Any] = {"revision": self.revision}
        if since is not None:
            out["changes"] = self.changes_since(since)
        return out
