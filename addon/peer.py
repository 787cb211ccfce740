"""A Blender peer minus Blender: transport, local queue, executor and handler sync wired together.

The bpy side (blender.py) and the Python test peer (blendbus.testing) both build on this, so the
protocol code a test exercises is the code that runs inside Blender.
"""

from __future__ import annotations

import logging
import tempfile
from concurrent import futures
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blendbus import __version__
from blendbus import protocol as p
from blendbus.sync import ADDON_PACKAGE

from . import handler_sync
from .checkpoints import History
from .declarations import Declarations
from .executor import Executor, Pending, Reply, Runtime
from .jobqueue import Job, JobQueue
from .paths import OutputFolder
from .transport import Connector, PeerLink

log = logging.getLogger("blendbus.peer")


def local_inventory(declarations: Declarations) -> dict[str, dict[str, Any]]:
    """The plugin handler packages this peer holds, as reported on registration."""
    inventory = {}
    for package in sorted(declarations.packages):
        sha = handler_sync.local_sha(package) if package != ADDON_PACKAGE else None
        if sha is not None:
            inventory[package] = {"package": package, "sha256": sha, "source": "local"}
    return inventory


@dataclass
class RecentJob:
    job_id: str
    command: str
    status: str
    duration_s: float


class PeerCore:
    def __init__(
        self,
        connect: Connector,
        *,
        uuid: str,
        runtime: Runtime,
        client_type: str = "blender",
        blender_version: str | None = None,
        capabilities: dict[str, Any] | None = None,
        handler_root: Path | None = None,
        poll_wait_s: float = p.POLL_WAIT_S,
        declarations: Declarations | None = None,
        output_root: Path | None = None,
        checkpoint_root: Path | None = None,
    ) -> None:
        self.runtime = runtime
        self.queue = JobQueue()
        declarations = declarations or Declarations.load()
        runtime.defaults = {**runtime.defaults, **declarations.defaults}
        self.executor = Executor(runtime, declarations)
        self.client_type, self.blender_version = client_type, blender_version
        self.capabilities = capabilities or {}
        self._handler_root = handler_root
        default_output = output_root or Path(tempfile.gettempdir()) / "blendbus-output" / uuid
        self.outputs = OutputFolder(lambda: self.runtime.setting(p.OUTPUT_DIR) or default_output, runtime.blend_dir)
        self.inventory: dict[str, dict[str, Any]] = local_inventory(declarations)
        self.preferences: list[dict[str, Any]] = []
        self.sync_errors: dict[str, str] = {}
        self.recent: deque[RecentJob] = deque(maxlen=20)
        self.pending: list[tuple[Pending, dict[str, Any]]] = []
        self.scene_accounts = False
        """Whether the server keeps a reply's scene account (an older one refuses the field)."""
        self.executor.history = History(
            checkpoint_root or Path(tempfile.gettempdir()) / "blendbus-checkpoints" / uuid, runtime.scene,
            lambda: int(self.runtime.setting(p.UNDO_CHECKPOINTS) or 0), runtime.save_checkpoint, runtime.load_checkpoint)
        self.link = PeerLink(
            connect, uuid=uuid, describe=self.describe, on_payload=self.queue.offer,
            on_registered=self._registered, poll_wait_s=poll_wait_s,
        )

    def handler_root(self) -> Path:
        """Where synced handler packages are written: the given folder, else a temporary one made on
        the first sync (most peers never sync, and should leave nothing behind)."""
        if self._handler_root is None:
            self._handler_root = Path(tempfile.mkdtemp(prefix="blendbus-handlers-"))
        return self._handler_root

    @property
    def uuid(self) -> str:
        return self.link.uuid

    def describe(self) -> dict[str, Any]:
        gates = {}
        for cmd in self.executor.commands.values():
            if cmd.get("gate"):
                state = p.gate_state(self.runtime.setting(cmd["gate"]))
                gates[cmd["gate"]] = p.GATE_ASK if state == p.GATE_ASK else state == "open"
        info = {
            "client_type": self.client_type,
            "is_persistent": False,
            "capabilities": {"blendbus_addon": __version__, p.EXPECT_REVISION: True, **self.capabilities},
            "handlers": list(self.inventory.values()),
            "gates": gates,
        }
        if self.blender_version:
            info["blender_version"] = self.blender_version
        return info

    async def _registered(self, client: Any, response: dict[str, Any]) -> None:
        from blendbus.client import call

        self.executor.max_result_bytes = int(response.get("max_result_bytes", self.executor.max_result_bytes))
        self.scene_accounts = p.SCENE_FIELD in response.get("accepts", [])
        self.preferences = response.get("preferences", [])
        local = self.executor.declarations
        # The server's defaults only fill keys this peer does not declare (a synced plugin's settings).
        self.runtime.defaults = {**{d["key"]: d["default"] for d in self.preferences}, **local.defaults}
        for entry in response.get("packages", []):
            name, sha = entry.get("package"), entry.get("sha256")
            problem = handler_sync.check_entry(name, sha)
            if problem:
                self.sync_errors[str(name)[:80]] = problem
                continue
            if name in local.packages:
                have = handler_sync.local_sha(name)
            else:  # never look a name the server chose up among this Python's installed packages
                have = self.inventory.get(name, {}).get("sha256")
            if have == sha:
                self.inventory[name] = {**entry, "source": self.inventory.get(name, {}).get("source", "local")}
                continue
            if self.runtime.setting(p.ACCEPT_HANDLERS_GATE) is not True:
                self.sync_errors[name] = (
                    f"{'outdated' if have else 'missing'}; enable '{p.ACCEPT_HANDLERS_GATE}' to receive it")
                continue
            try:
                source = await call(client, p.FETCH_PACKAGE,
                                    {"client_uuid": self.uuid, "peer_token": self.link.token, "package": name})
                handler_sync.install({**source, "package": name, "sha256": sha}, self.handler_root())
                self.inventory[name] = {**entry, "source": "synced"}
                self.executor.synced.add(name)
                self.sync_errors.pop(name, None)
                log.info("blendbus peer %s: loaded handler package %s %s from the server", self.uuid, name,
                         entry.get("version"))
            except Exception as exc:  # noqa: BLE001 - one bad package must not stop the peer
                self.sync_errors[name] = f"{type(exc).__name__}: {exc}"
        self.executor.set_commands(response.get("commands", []))

    def run_payload(self, payload: dict[str, Any], wait: bool = False) -> Reply | None:
        """Execute one payload on the calling thread and post its reply.

        A handler that handed work to a background thread is parked (None is returned) and
        finished later by `resume_ready`, unless `wait` (a caller that is not Blender's main
        thread may simply block).
        """
        job = Job(payload.get("job_id", ""), self.link.progress, self.runtime.setting, self.outputs,
                  self.runtime.how_to_enable, self.executor.history, self.link.ask)
        self.queue.started(job)
        outcome = self.executor.run(payload, job)
        while wait and isinstance(outcome, Pending):
            while not outcome.ready():  # its future, or a cancel
                futures.wait([outcome.future], timeout=0.1)
            outcome = self.executor.resume(outcome)
        if isinstance(outcome, Pending):
            self.pending.append((outcome, payload))
            return None
        return self._complete(job, payload, outcome)

    def resume_ready(self) -> int:
        """Continue parked handlers whose background work finished; returns how many moved on."""
        moved = 0
        for item in [item for item in self.pending if item[0].ready()]:
            self.pending.remove(item)
            pending, payload = item
            outcome = self.executor.resume(pending)
            if isinstance(outcome, Pending):
                self.pending.append((outcome, payload))
            else:
                self._complete(pending.job, payload, outcome)
            moved += 1
        return moved

    def _complete(self, job: Job, payload: dict[str, Any], reply: Reply) -> Reply:
        self.queue.finished(job.job_id)
        if job.cancelled and reply.status == p.COMPLETED:
            reply.error = "the caller cancelled this job while it ran; it completed anyway"
        self.link.reply(reply.job_id, reply.status, reply.result, reply.error, reply.size,
                        reply.scene if self.scene_accounts else None)
        self.recent.appendleft(RecentJob(reply.job_id, payload.get("command") or "job_dispatch", reply.status,
                                         time.monotonic() - job.started))
        return reply

    def drain(self, budget_s: float) -> int:
        """Run queued jobs until the queue is empty or the time budget is spent; returns the count."""
        deadline = time.monotonic() + budget_s
        ran = self.resume_ready()
        while True:
            payload = self.queue.take(0)
            if payload is None:
                return ran
            self.run_payload(payload)
            ran += 1
            if time.monotonic() >= deadline:
                return ran
