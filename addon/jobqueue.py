"""The peer's local queue of payloads waiting for Blender's main thread.

bpy-free and thread-safe: the transport thread puts, the main thread (a timer in the GUI, a
blocking loop headless) takes. It also remembers which job ids it has seen, because the server
redelivers anything not yet acknowledged and a job must run once.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from blendbus import protocol as p

from .paths import OutputFolder


class JobCancelled(BaseException):
    """Raised in the thread running a job when its caller cancels it, at the job's next Python line.

    A BaseException, like KeyboardInterrupt, so that a handler's `except Exception` does not swallow
    it; code that must clean up uses `finally`."""


class Report(Protocol):
    """Where a job's progress and log lines go (PeerLink.progress): `level` set makes `message` a log line."""

    def __call__(self, job_id: str, fraction: float | None, message: str | None, level: str | None = None) -> None: ...


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Ask Python to raise `exc` in that thread at its next line (None withdraws a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


@dataclass(frozen=True)
class Background:
    """Work a generator handler hands to a worker thread: `result = yield job.background(fn, ...)`."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Until:
    """A future a generator handler waits for without holding any thread: `value = yield job.until(future)`."""

    future: Future[Any]


@dataclass(frozen=True)
class Answer:
    """How the person answered a job's question (`answer = yield job.ask(...)`): `accept` with `content`
    (the fields the schema asked for), `decline`, or `cancel` (dismissed, or nobody could be asked:
    `reason` says why)."""

    action: str
    content: dict[str, Any] | None = None
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.action == "accept"

    @property
    def text(self) -> str | None:
        """A sampled message's text (`job.sample`), or None."""
        content = (self.content or {}).get("content")
        return content.get("text") if isinstance(content, dict) and content.get("type") == "text" else None


Asker = Callable[[str, dict[str, Any]], None]
"""Sends a job's question to its callers (PeerLink.ask): the job id, then `{id, message, schema}`."""


class Job:
    """What a handler sees of its own job: progress reporting, questions, cooperative cancellation."""

    def __init__(
        self,
        job_id: str,
        report: Report | None = None,
        settings: Callable[[str], Any] | None = None,
        outputs: OutputFolder | None = None,
        enabling: Callable[[str], str] | None = None,
        history: Any = None,
        asker: Asker | None = None,
    ) -> None:
        self.job_id = job_id
        self.cancelled = False
        self.started = time.monotonic()
        self._thread: int | None = None
        self._lock = threading.Lock()
        self._report = report
        self._settings = settings
        self._outputs = outputs
        self._enabling = enabling
        self.history = history
        """The peer's checkpoints and scene log (checkpoints.History), for undo and the audit trail."""
        self._asker = asker
        self._questions: dict[str, Future[Answer]] = {}
        self.approved = False
        """The person approved this job under a gate set to ask (executor.py)."""

    @property
    def outputs(self) -> OutputFolder:
        """The peer's output folder: resolve every path an LLM passed through it (paths.py)."""
        if self._outputs is None:
            raise RuntimeError("this job has no output folder (a peer always gives one)")
        return self._outputs

    @contextmanager
    def running(self) -> Iterator[None]:
        """The calling thread runs this job's Python code for the duration: a cancel interrupts it.

        JobCancelled may surface anywhere inside, even as the block ends; once it has ended, no
        interrupt is left pending for whatever the thread does next."""
        with self._lock:
            self._thread = threading.get_ident()
        try:
            yield
        finally:
            with self._lock:
                self._thread = None
                _raise_in(threading.get_ident(), None)

    def cancel(self) -> None:
        """The caller gave up: flag it (long handlers check `cancelled`) and interrupt running code."""
        self.cancelled = True
        with self._lock:
            if self._thread is not None:
                _raise_in(self._thread, JobCancelled)

    def background(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Background:
        """Yield this from a handler to run `fn` off Blender's main thread (network, disk, decoding).

        The main thread keeps serving Blender meanwhile; the handler resumes on it with `fn`'s
        return value (or its exception raised at the `yield`).
        """
        return Background(fn, args, kwargs)

    def until(self, future: Future[Any]) -> Until:
        """Yield this from a handler to wait for `future` (set by another job, or a thread), with no
        thread held meanwhile: the handler resumes on the main thread with its result. A cancel
        resumes it at once, with JobCancelled at the `yield`."""
        return Until(future)

    def ask(self, message: str, schema: dict[str, Any]) -> Until:
        """Yield this from a handler to ask the person behind the calling client (MCP elicitation, form
        mode): `answer = yield job.ask("Overwrite it?", {"type": "object", "properties": {...}})`.
        The handler resumes with an `Answer`; no thread is held meanwhile. A caller that cannot ask its
        user answers `cancel` at once, with the reason."""
        return self._put({"message": str(message)[:p.MAX_LOG_CHARS], "schema": schema})

    def ask_url(self, message: str, url: str) -> Until:
        """Yield this to send the person to a page (MCP URL-mode elicitation: a sign-in, a licence to
        accept), where what they do never passes through the client: the `Answer` says only whether
        they went (`accept`), declined or dismissed it; the handler checks the outcome itself."""
        return self._put({"message": str(message)[:p.MAX_LOG_CHARS], "url": str(url)})

    def sample(self, prompt: str | list[dict[str, Any]], *, max_tokens: int = 1000, system_prompt: str | None = None,
               temperature: float | None = None) -> Until:
        """Yield this from a handler to ask the model behind the calling client (MCP sampling):
        `reply = yield job.sample("Name three materials for a teapot", max_tokens=200)`. `prompt` is the
        user's text, or MCP sampling messages. The handler resumes with an `Answer`: `accept` with the
        model's message as `content` (`reply.text` is its text), or `cancel` with the reason."""
        messages = [{"role": "user", "content": {"type": "text", "text": prompt}}] if isinstance(prompt, str) else prompt
        request: dict[str, Any] = {"messages": messages, "maxTokens": int(max_tokens)}
        if system_prompt is not None:
            request["systemPrompt"] = system_prompt
        if temperature is not None:
            request["temperature"] = float(temperature)
        return self._put({p.SAMPLE_KEY: request})

    def _put(self, fields: dict[str, Any]) -> Until:
        question: Future[Answer] = Future()
        if self._asker is None:
            question.set_result(Answer("cancel", reason="this job has no caller to ask"))
            return Until(question)
        ask_id = f"q{len(self._questions) + 1}"
        self._questions[ask_id] = question
        # Nobody may ever answer (the caller left, or the question was lost): the job must still end.
        timer = threading.Timer(p.ASK_TIMEOUT_S, self.answered, (ask_id, "cancel", None, p.UNANSWERED))
        timer.daemon = True
        timer.start()
        question.add_done_callback(lambda _: timer.cancel())
        self._asker(self.job_id, {"id": ask_id, **fields})
        return Until(question)

    def answered(self, ask_id: str, action: str, content: Any, reason: str = "") -> None:
        """The answer to question `ask_id` arrived (from the transport's thread); the first one counts."""
        question = self._questions.get(ask_id)
        if question is not None and not question.done():
            question.set_result(Answer(action if action in p.ASK_ACTIONS else "cancel",
                                       content if isinstance(content, dict) else None, str(reason or "")))

    def how_to_enable(self, key: str) -> str:
        """How this peer's user turns the preference `key` on: the add-on's preferences in a GUI Blender,
        `--set` for `blendbus peer`, `--embedded-set` for the server's embedded Blender."""
        return self._enabling(key) if self._enabling is not None else f"set the preference '{key}' to true"

    def setting(self, key: str) -> Any:
        """An addon preference, e.g. ``job.setting("polyhaven.api_url")``; None if unknown."""
        return self._settings(key) if self._settings is not None else None

    def progress(self, fraction: float | None, message: str | None = None) -> None:
        """Report progress (0..1); it reaches the LLM client as an MCP progress notification."""
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        if self._report is not None:
            self._report(self.job_id, fraction, message)

    def log(self, level: str, message: str) -> None:
        """Tell the calling client something worth knowing that is not the result (a fallback taken, a
        warning from Blender): an MCP log message (`notifications/message`, logger \"blender\") at `level`,
        one of protocol.LOG_LEVELS; the client's `logging/setLevel` decides whether it is shown."""
        if level not in p.LOG_LEVELS:
            raise ValueError(f"log level {level!r} is not one of {', '.join(p.LOG_LEVELS)}")
        if self._report is not None:
            self._report(self.job_id, None, str(message)[:p.MAX_LOG_CHARS], level)


class JobQueue:
    def __init__(self, remember: int = 20_000) -> None:
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._running: dict[str, Job] = {}
        self._remember = remember
        self._cond = threading.Condition()
        self._closed = False

    def offer(self, payload: dict[str, Any]) -> str | None:
        """Accept a payload from the server. Returns a job id that must be replied to as cancelled
        (a cancel for a job still queued here), else None."""
        job_id = payload.get("job_id", "")
        with self._cond:
            if payload.get("message_type") == p.ANSWER:
                asking = self._running.get(job_id)
                if asking is not None:
                    asking.answered(str(payload.get("ask_id", "")), str(payload.get("action", "")),
                                    payload.get("content"), str(payload.get("reason", "")))
                return None
            if payload.get("message_type") == p.CANCEL:
                if self._items.pop(job_id, None) is not None:
                    return job_id
                job = self._running.get(job_id)
                if job is not None:
                    job.cancel()
                return None
            if job_id in self._seen:
                return None
            self._seen[job_id] = None
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            self._items[job_id] = payload
            self._cond.notify()
            return None

    def take(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next payload, waiting up to `timeout` seconds (None: forever, 0: don't wait)."""
        with self._cond:
            if not self._items and timeout != 0:
                self._cond.wait_for(lambda: bool(self._items), timeout)
            if not self._items:
                return None
            return self._items.popitem(last=False)[1]

    def started(self, job: Job) -> None:
        with self._cond:
            self._running[job.job_id] = job
            if self._closed:
                job.cancel()

    def finished(self, job_id: str) -> None:
        with self._cond:
            self._running.pop(job_id, None)

    def wake(self) -> None:
        """Unblock a waiting `take` (used on shutdown)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """The peer is leaving: cancel every running job, and any started from now on.

        A handler waiting for an answer, a model's reply or another job's future would otherwise
        wait for ever once nobody can deliver it, holding its thread and the process's exit."""
        with self._cond:
            self._closed = True
            running = list(self._running.values())
            self._cond.notify_all()
        for job in running:
            job.cancel()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
