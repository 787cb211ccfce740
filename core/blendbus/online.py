"""An online service a plugin reaches from Blender: its settings and its status answer, declared once.

Every plugin that talks to a web API needs the same preferences: a gate that allows its tools (off
until the person turns it on), the credentials the service wants (secret), its base URL (a test
points it at a loopback fake, a studio at a proxy) and how long a request may take. It also answers
a status command the same way: enabled or not, whether the credentials are set, and how to enable
it. `OnlineService` is that, named once: the server-side declarations call `preferences()`, the
handlers in Blender read the same names and build their status with `status()`.

    POLY_PIZZA = OnlineService("polypizza", "Poly Pizza", "https://api.poly.pizza/v1.1",
                               credentials={"api_key": "Poly Pizza API key (sent as x-auth-token)"})

    @hookimpl
    def register_preferences(register):
        POLY_PIZZA.register_preferences(register)

    @hookimpl
    def register_commands(register):
        register(POLY_PIZZA.status_command("Whether Poly Pizza is enabled and its API key works.", HANDLERS))

    def get_polypizza_status(job):           # in Blender
        return POLY_PIZZA.status(job, check=lambda: probe(job))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .command import Command, Preference


@dataclass(frozen=True)
class OnlineService:
    """The preferences and status of one online service, under the plugin's preference prefix."""

    plugin: str
    """The preference prefix: `<plugin>.enabled`, `<plugin>.api_url`, ..."""
    title: str
    """How people call the service: "Poly Pizza"."""
    api_url: str
    """The default base URL."""
    credentials: Mapping[str, str] = field(default_factory=dict)
    """Secret preferences the service needs, field -> description: {"api_key": "Poly Pizza API key"}."""
    timeout_s: float = 30.0
    """The default time one request may take."""
    api_url_description: str = ""

    @property
    def gate(self) -> str:
        """The preference that allows the plugin's gated tools."""
        return f"{self.plugin}.enabled"

    def key(self, name: str) -> str:
        """A preference's full key: `key("api_key")` is `polypizza.api_key`."""
        return f"{self.plugin}.{name}"

    def preferences(self, *extra: Preference) -> list[Preference]:
        """The gate, the credentials, the base URL, `extra` (the service's own), then the timeout."""
        return [
            Preference(self.gate, "bool", False, f"Allow {self.title} tools"),
            *(Preference(self.key(name), "str", "", what, secret=True)
              for name, what in self.credentials.items()),
            Preference(self.key("api_url"), "str", self.api_url, self.api_url_description or f"{self.title} API base URL"),
            *extra,
            Preference(self.key("timeout_s"), "float", self.timeout_s, f"Seconds before a {self.title} request gives up"),
        ]

    def register_preferences(self, register: Callable[[Preference], None], *extra: Preference) -> None:
        """What a plugin's `register_preferences` hook does: register `preferences(*extra)`."""
        for preference in self.preferences(*extra):
            register(preference)

    def status_command(self, description: str, handlers: str, *, name: str | None = None, timeout: float = 20,
                       open_world: bool | None = True) -> Command:
        """The service's status command: `get_<plugin>_status` unless `name` says otherwise, answered in
        Blender by the function of that name in the `handlers` module (with `status()`). It is read-only
        and never gated: it is how a person learns how to turn the gate on. `open_world`: whether it asks
        the service (a key check); None leaves the hint out."""
        name = name or f"get_{self.plugin}_status"
        annotations = {"read_only": True} if open_world is None else {"read_only": True, "open_world": open_world}
        return Command(name, description, f"{handlers}:{name}", annotations=annotations, timeout=timeout)

    def status(self, job: Any, *, also: tuple[str, ...] = (), check: Callable[[], dict[str, Any]] | None = None,
               **facts: Any) -> dict[str, Any]:
        """A status command's answer, from the job's settings: `enabled`, whether the credentials are set
        (`key_set` for one, `keys_set` for several), `facts` (the mode, the URL in use...); while the gate
        is off, `how_to_enable`: the peer's own way to turn the gate on, then the preferences in `also`
        and the credentials to set. Once
        enabled, `check` (a cheap authenticated request) adds what it learns, `key_works` true; a check
        that fails gives `key_works` false and its reason."""
        enabled = job.setting(self.gate) is True
        status: dict[str, Any] = {"enabled": enabled, **facts}
        names = [self.key(name) for name in self.credentials]
        if names:
            status["key_set" if len(names) == 1 else "keys_set"] = all(job.setting(name) for name in names)
        if not enabled:
            then = ", ".join(f"'{name}'" for name in (*also, *names))
            status["how_to_enable"] = job.how_to_enable(self.gate) + (f"; then set {then}" if then else "")
            return status
        if check is not None:
            try:
                status.update({"key_works": True, **check()})
            except Exception as exc:  # noqa: BLE001 - the status reports any failure of its probe
                status.update(key_works=False, error=str(exc))
        return status
