"""Runs one payload on the peer and turns the outcome into a reply. bpy-free.

Everything Blender-specific (reading preferences for gates, undo steps) comes in through a
`Runtime`, so the same executor serves the real addon and the Python test peer.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import traceback
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jsonschema

from blendbus import protocol as p
from blendbus.encoding import json_size
from blendbus.validation import validation_message

from . import job_warnings, scripts
from .declarations import CommandTable, Declarations, in_package
from .checkpoints import History
from .jobqueue import Background, Job, JobCancelled, Until
from .revisions import SceneConflict, SceneLog
from .traces import format_exception, portable


class Runtime(Protocol):
    defaults: dict[str, Any]
    """Preference defaults: this peer's own declarations, plus the server's for keys only it declares."""
    scene: SceneLog
    """The scene's revision and what moved it (revisions.py)."""

    def settle(self) -> None:
        """Bring `scene` up to date with changes not yet evaluated (the GUI's, or a job's)."""

    def changed(self) -> None:
        """A scene-changing job ran: account for what it did (Blender evaluates it; a peer without a
        scene counts one move)."""

    def setting(self, key: str) -> Any:
        """The value of an addon preference (`None` if unknown)."""

    def undo_step(self, label: str) -> AbstractContextManager[Any]:
        """Wrap one command so Ctrl-Z reverts it in one step."""

    def blend_dir(self) -> str | None:
        """The folder of the open .blend file (what `//` means), None while it is unsaved."""

    def unobserved(self) -> AbstractContextManager[Any]:
        """Run a scene-neutral command (`Command.scene_neutral`): what Blender evaluates inside, and
        right after, is not reported as a scene change."""

    def how_to_enable(self, key: str) -> str:
        """How the person running this peer turns the preference `key` on, in the words of how it runs."""

    save_checkpoint: Callable[[Path], None] | None
    """Writes the scene to a file (checkpoints.py); None where checkpoints are not safe or possible."""
    load_checkpoint: Callable[[Path], None] | None
    """Replaces the scene with a checkpoint's."""


class PlainRuntime:
    """Preferences from a dict, no undo: the Python test peer's runtime."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})
        self.defaults: dict[str, Any] = {}
        self.scene = SceneLog()
        self.save_checkpoint = self.load_checkpoint = None  # no scene to keep

    def settle(self) -> None:
        pass

    def changed(self) -> None:
        self.scene.moved()

    def setting(self, key: str) -> Any:
        return self.settings.get(key, self.defaults.get(key))

    def undo_step(self, label: str) -> AbstractContextManager[Any]:
        return nullcontext()

    def blend_dir(self) -> str | None:
        return None

    def unobserved(self) -> AbstractContextManager[Any]:
        return nullcontext()

    def how_to_enable(self, key: str) -> str:
        return f"set '{key}' to true in this peer's settings"


@dataclass
class Pending:
    """A generator handler waiting for its background work; resume it on the main thread when ready."""

    job: Job
    gen: Generator[Any, Any, Any]
    future: Future[Any]
    undo_label: str | None
    neutral: bool = False
    """The command is scene-neutral: each slice runs unobserved."""

    def ready(self) -> bool:
        return self.future.done() or self.job.cancelled


@dataclass(frozen=True)
class Approved:
    """The person approved a gated job (`gate = ask`): run its payload."""

    payload: dict[str, Any]


APPROVAL_SCHEMA: dict[str, Any] = {"type": "object", "required": ["approve"], "properties": {
    "approve": {"type": "boolean", "title": "Run it", "default": True,
                "description": "Run this in your Blender now"}}}
"""What the person answers about a gated job (MCP elicitation's form: a flat object schema)."""
APPROVAL_SHOWN_CHARS = 6000
"""How much of a script the question shows (the rest is marked as cut)."""


@dataclass
class Reply:
    job_id: str
    status: str
    result: Any = None
    error: str = ""
    size: int = 0
    """Length of the JSON-encoded result (measured once, for the size cap and reply batching)."""
    scene: dict[str, Any] | None = None
    """The scene's revision after the job (before it, on a conflict), and what moved it (SceneLog.account)."""


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Make a handler's return value JSON-safe: vectors/matrices to lists, NaN/inf to strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if _depth > 64:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "__iter__") and hasattr(value, "__len__"):  # mathutils Vector/Matrix/Color/Euler
        try:
            return [jsonable(v, _depth + 1) for v in value]
        except TypeError:
            pass
    return str(value)


class Executor:
    def __init__(self, runtime: Runtime, declarations: Declarations, *,
                 max_result_bytes: int = 64 * 1024 * 1024) -> None:
        self.runtime = runtime
        self.declarations = declarations
        self.max_result_bytes = max_result_bytes
        self.table = CommandTable(dict(declarations.commands))
        self.synced: set[str] = set()
        """Handler packages this peer accepted from the server (live sync)."""
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blendbus-background")
        self._began: dict[str, int | None] = {}
        """job id -> the revision a scene-changing job began at (None: a job that changes nothing)."""
        self.history: History | None = None
        """The peer's checkpoints (undo by call), when it keeps them."""

    @property
    def commands(self) -> dict[str, dict[str, Any]]:
        return self.table.commands

    def set_commands(self, wires: list[dict[str, Any]]) -> None:
        """Weigh the command table the server sent on registration against this peer's own."""
        self.table = CommandTable.build(self.declarations, wires, self.synced)
        self._validators.clear()
        self._handlers.clear()

    def handler(self, ref: str) -> Callable[..., Any]:
        """The function behind 'pkg.module:fn', imported only from a handler package this peer holds."""
        fn = self._handlers.get(ref)
        if fn is None:
            if not in_package(ref, self.declarations.packages | self.synced):
                raise PermissionError(f"handler {ref} is outside the handler packages this peer holds; refused")
            module, _, name = ref.partition(":")
            fn = self._handlers[ref] = getattr(importlib.import_module(module), name)
        return fn

    def run(self, payload: dict[str, Any], job: Job) -> Reply | Pending:
        """Execute one payload; never raises (every failure becomes a `failed` reply).

        A generator handler that yielded background work comes back as Pending: call `resume`
        once it is ready.
        """
        kind = payload.get("message_type")
        if kind not in p.PAYLOAD_KINDS:
            return Reply(job.job_id, p.FAILED, error=f"unknown message_type {kind!r}")
        name = payload.get("command")
        gate = p.CODE_GATE if kind == p.JOB_DISPATCH else (
            (self.commands.get(name) or {}).get("gate") if isinstance(name, str) else None)
        if gate is not None and not job.approved and p.gate_state(self.runtime.setting(gate)) == p.GATE_ASK:
            return self._advance(job, self._approval(job, payload, gate), None, True)
        try:
            conflict = self._begin(job, payload)
            if conflict is not None:
                return conflict
            with job.running(), job_warnings.written_to(job):
                outcome = self._run_script(payload, job) if kind == p.JOB_DISPATCH else self._run_command(payload, job)
        except JobCancelled:
            outcome = _cancelled(job)
        except Exception as exc:  # noqa: BLE001 - last line of defence: a reply always goes back
            outcome = Reply(job.job_id, p.FAILED,
                            error="blendbus peer error:\n" + format_exception(exc, exc.__traceback__))
        return self._end(job, outcome)

    def _begin(self, job: Job, payload: dict[str, Any]) -> Reply | None:
        """Note the revision a job starts from; refuse a scene-changing one whose `expect_revision` the
        scene has moved past (nothing runs: CONFLICT, with what moved it)."""
        self.runtime.settle()
        scene = self.runtime.scene
        name = payload.get("command") if payload.get("message_type") == p.COMMAND_DISPATCH else None
        cmd = self.commands.get(name) if isinstance(name, str) else None
        changes = cmd is None or cmd.get("scene_neutral") is not True
        expect = payload.get(p.EXPECT_REVISION)
        if changes and isinstance(expect, int) and not isinstance(expect, bool) and expect != scene.revision:
            moved = (f"moved from revision {expect} to {scene.revision}" if expect < scene.revision else
                     f"is at revision {scene.revision}, not {expect} (this peer restarted, or the revision was another's)")
            return Reply(job.job_id, p.CONFLICT, scene=scene.account(since=expect), error=(
                f"the scene {moved} since the read this call was based on; nothing ran. Read the scene again,"
                " then retry with the new expect_revision (or without one, to overwrite what changed)"))
        self._began[job.job_id] = scene.revision if changes else None
        scene.job_id, scene.command = job.job_id, name if isinstance(name, str) else p.JOB_DISPATCH
        if changes and self.history is not None:
            self.history.take(job.job_id, scene.command)
        return None

    def _end(self, job: Job, outcome: Reply | Pending) -> Reply | Pending:
        """A job's reply with the scene's account; a job still waiting on background work is left as is."""
        self.runtime.scene.job_id = None
        if isinstance(outcome, Pending):
            return outcome
        began = self._began.pop(job.job_id, None)
        if began is not None:
            self.runtime.scene.job_id = job.job_id
            self.runtime.changed()  # what the job did is put down to it
            self.runtime.scene.job_id = None
            if self.history is not None:
                self.history.ended(job.job_id)
        if outcome.scene is None:
            outcome.scene = self.runtime.scene.account(since=began)
        return outcome

    def _gate_closed(self, gate: str | None, what: str, job: Job) -> str | None:
        state = p.gate_state(self.runtime.setting(gate)) if gate is not None else "open"
        if state == "open" or (state == p.GATE_ASK and job.approved):
            return None
        return f"{what} is disabled on this Blender peer (preference '{gate}'): {self.runtime.how_to_enable(gate)}"

    def _approval(self, job: Job, payload: dict[str, Any], gate: str) -> Generator[Any, Any, Reply | Approved]:
        """A gated job under `gate = ask`: the person sees what would run and approves it (then it runs
        as if the gate were open) or not (`cancelled`, nothing ran). A caller that cannot ask fails it,
        naming the preference that runs it without asking."""
        if payload.get("message_type") == p.JOB_DISPATCH:
            what, shown = "a Python script", str(payload.get("script", ""))
        else:
            what = f"the command {payload.get('command')!r}"
            shown = "\n".join(f"{name}:\n{value}" if isinstance(value, str) else f"{name}: {json.dumps(value)}"
                              for name, value in (payload.get("params") or {}).items())  # a script reads as one
        answer = yield job.ask(f"An assistant wants to run {what} in your Blender:\n\n{shown[:APPROVAL_SHOWN_CHARS]}"
                               f"{' [...]' if len(shown) > APPROVAL_SHOWN_CHARS else ''}\n\nRun it?", APPROVAL_SCHEMA)
        if answer.accepted and (answer.content or {}).get("approve", True) is True:
            job.approved = True
            return Approved(payload)
        if answer.action == "cancel" and answer.reason:
            return Reply(job.job_id, p.FAILED, error=(
                f"{what} needs the person's approval here (preference '{gate}' is ask), but {answer.reason}."
                f" To run it without asking: {self.runtime.how_to_enable(gate)}"))
        return Reply(job.job_id, p.CANCELLED, error=f"the person did not approve {what}; nothing ran")

    def _run_script(self, payload: dict[str, Any], job: Job) -> Reply:
        closed = self._gate_closed(p.CODE_GATE, "running scripts (job_dispatch)", job)
        if closed:
            return Reply(job.job_id, p.FAILED, error=closed)
        script = payload.get("script")
        if not isinstance(script, str):
            return Reply(job.job_id, p.FAILED, error="job_dispatch payload has no 'script' string")
        with self.runtime.undo_step(f"blendbus job {job.job_id}"):
            try:
                out = scripts.run(script, f"<job_{job.job_id}>")
            except scripts.ScriptError as exc:
                return Reply(job.job_id, p.FAILED, result=exc.stdout, error=exc.trace)
        return self._finish(job, out)

    def _run_command(self, payload: dict[str, Any], job: Job) -> Reply:
        name = payload.get("command", "")
        cmd = self.commands.get(name)
        if cmd is None:
            return Reply(job.job_id, p.FAILED, error=self.table.refused.get(
                name, f"this peer has no command {name!r}; is the plugin loaded?"))
        closed = self._gate_closed(cmd.get("gate"), f"command {name!r}", job)
        if closed:
            return Reply(job.job_id, p.FAILED, error=closed)
        params = payload.get("params") or {}
        validator = self._validators.get(name)
        if validator is None:
            validator = self._validators[name] = jsonschema.Draft202012Validator(cmd["params_schema"])
        errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
        if errors:
            return Reply(job.job_id, p.FAILED, error=validation_message(name, errors))
        try:
            fn = self.handler(cmd["handler"])
        except PermissionError as exc:
            return Reply(job.job_id, p.FAILED, error=str(exc))
        except ImportError as exc:
            return Reply(job.job_id, p.FAILED, error=(
                f"handler {cmd['handler']} is not available on this peer ({exc}); install the plugin next to"
                f" Blender, or enable '{p.ACCEPT_HANDLERS_GATE}' so the server can send it"))
        except AttributeError:
            return Reply(job.job_id, p.FAILED, error=(
                f"the installed plugin has no handler {cmd['handler']}: this version does not implement"
                f" {name!r} yet"))
        kwargs = dict(params)
        if "job" in _parameters(fn):
            kwargs["job"] = job
        label = f"blendbus: {name}" if cmd.get("undo") else None
        neutral = cmd.get("scene_neutral") is True
        if inspect.isgeneratorfunction(fn):
            return self._advance(job, fn(**kwargs), label, neutral)
        with self.runtime.undo_step(label) if label else nullcontext(), self._observed(neutral):
            try:
                value = fn(**kwargs)
            except scripts.ScriptError as exc:
                return Reply(job.job_id, p.FAILED, result=exc.stdout, error=exc.trace)
            except SceneConflict as exc:
                return self._conflict(job, exc)
            except Exception as exc:  # noqa: BLE001 - the handler's failure is the job's failure
                return Reply(job.job_id, p.FAILED, error=_handler_error(exc))
        return self._finish(job, value)

    def resume(self, pending: Pending) -> Reply | Pending:
        """Continue a generator handler on the calling (main) thread with its background result; a
        job cancelled meanwhile gets JobCancelled at its `yield` instead, to clean up."""
        job = pending.job
        error = JobCancelled() if job.cancelled else pending.future.exception()
        self.runtime.scene.job_id = job.job_id
        try:
            with job.running(), job_warnings.written_to(job):
                if error is not None:
                    outcome = self._advance(job, pending.gen, pending.undo_label, pending.neutral, error=error)
                else:
                    outcome = self._advance(job, pending.gen, pending.undo_label, pending.neutral,
                                            send=pending.future.result())
        except JobCancelled:
            pending.gen.close()
            outcome = _cancelled(job)
        return self._end(job, outcome)

    def _observed(self, neutral: bool) -> AbstractContextManager[Any]:
        return self.runtime.unobserved() if neutral else nullcontext()

    def _advance(self, job: Job, gen: Generator[Any, Any, Any], undo_label: str | None, neutral: bool,
                 send: Any = None, error: BaseException | None = None) -> Reply | Pending:
        try:
            with self._observed(neutral):
                step = gen.throw(error) if error is not None else gen.send(send)
        except StopIteration as done:
            if isinstance(done.value, Reply):
                return done.value
            if isinstance(done.value, Approved):  # the person approved: now the job runs, observed
                return self.run(done.value.payload, job)
            if undo_label:  # one undo step for the whole command, however many slices it ran in
                with self.runtime.undo_step(undo_label):
                    pass
            return self._finish(job, done.value)
        except SceneConflict as exc:
            return self._conflict(job, exc)
        except Exception as exc:  # noqa: BLE001 - the handler's failure is the job's failure
            return Reply(job.job_id, p.FAILED, error=_handler_error(exc))
        if isinstance(step, Until):
            return Pending(job, gen, step.future, undo_label, neutral)
        if not isinstance(step, Background):
            gen.close()
            return Reply(job.job_id, p.FAILED, error=(f"handler yielded {type(step).__name__}; a handler may only"
                                                      " yield job.background(fn, ...) or job.until(future)"))
        return Pending(job, gen, self._pool.submit(step.fn, *step.args, **step.kwargs), undo_label, neutral)

    def _conflict(self, job: Job, exc: SceneConflict) -> Reply:
        return Reply(job.job_id, p.CONFLICT, error=exc.message, scene=self.runtime.scene.account(since=exc.since))

    def _finish(self, job: Job, value: Any) -> Reply:
        value = jsonable(value)
        size = json_size(value)
        if size > self.max_result_bytes:
            return Reply(job.job_id, p.FAILED, error=(
                f"the result is {size} bytes, above this peer's cap of {self.max_result_bytes} bytes;"
                " ask for less (page through it) rather than truncating"))
        return Reply(job.job_id, p.COMPLETED, result=value, size=size)


def _cancelled(job: Job) -> Reply:
    return Reply(job.job_id, p.CANCELLED, error="cancelled by the caller while it ran: stopped at its next Python line")


def _parameters(fn: Callable[..., Any]) -> Iterator[str]:
    try:
        return iter(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return iter(())


def _handler_error(exc: Exception) -> str:
    """The handler's own message first (it is written for the user), then where it came from."""
    tb = traceback.extract_tb(exc.__traceback__)[1:][-3:]  # from the handler inward
    for frame in tb:
        frame.filename = portable(frame.filename)
    where = "".join(traceback.format_list(tb))
    return f"{type(exc).__name__}: {exc}\n{where}".rstrip()
