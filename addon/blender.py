"""Everything of the addon that needs bpy: preferences, the Blender runtime, the drain timer, the panel.

Preferences are generated from declarations (the core's and every plugin's `register_preferences`),
never hand-written per plugin. A declaration key such as ``polyhaven.enabled`` becomes the property
``polyhaven__enabled``; keys declared only later (a plugin synced live) live in a key/value list
that persists with the rest.
"""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import bpy

from blendbus import protocol as p
from blendbus.client import connect as http_connect
from blendbus.suggest import did_you_mean

from . import handler_sync
from .declarations import Declarations
from .peer import PeerCore
from .revisions import SceneLog
from .transport import TransportThread

ADDON_ID = __name__.rpartition(".")[0]
DEFAULT_URL = "http://127.0.0.1:8765/mcp"
DRAIN_BUDGET_S = 0.02
IDLE_INTERVALS = (0.0, 0.005, 0.01, 0.02, 0.05)
"""Timer intervals while idle: immediate after work, backing off to 50 ms (docs/peer-protocol.md)."""

def prop_name(key: str) -> str:
    return key.replace(".", "__")


def declared_preferences() -> list[dict[str, Any]]:
    """Preference declarations known when the addon registers: this peer's own (declarations.py)."""
    return Declarations.load().preferences


def bind_bundled_handlers() -> list[str]:
    """Make the plugin handler packages shipped inside a built extension importable.

    A package already importable (the plugin is installed in this Python) is left alone.
    """
    root = Path(__file__).with_name("plugin_handlers")
    manifest = root / "manifest.json"
    if not manifest.exists():
        return []
    bound = []
    for package in json.loads(manifest.read_text()):
        if handler_sync.local_sha(package) is None:
            handler_sync.bind(package, root / package.replace(".", "/"))
            bound.append(package)
    return bound


def _property(decl: dict[str, Any]) -> Any:
    kind, desc, default = decl["type"], decl.get("description", ""), decl.get("default")
    name = decl["key"]
    if kind == "bool":
        return bpy.props.BoolProperty(name=name, description=desc, default=bool(default))
    if kind == "int":
        return bpy.props.IntProperty(name=name, description=desc, default=int(default or 0))
    if kind == "float":
        return bpy.props.FloatProperty(name=name, description=desc, default=float(default or 0.0))
    if kind == "gate":
        items = [("false", "Off", "Refuse"), (p.GATE_ASK, "Ask first", "Show each job to the person, who approves it"),
                 ("true", "On", "Allow without asking")]
        return bpy.props.EnumProperty(name=name, description=desc, items=items, default=str(default).lower())
    if kind == "enum":
        items = [(c, c, "") for c in decl.get("choices", [])]
        return bpy.props.EnumProperty(name=name, description=desc, items=items, default=str(default))
    subtype = "PASSWORD" if decl.get("secret") else "NONE"
    return bpy.props.StringProperty(name=name, description=desc, default=str(default or ""), subtype=subtype)


class BLENDBUS_PG_setting(bpy.types.PropertyGroup):
    """A preference declared after the addon registered (a live-synced plugin's)."""

    key: bpy.props.StringProperty()
    value: bpy.props.StringProperty()


def _preferences_class(decls: list[dict[str, Any]]) -> type:
    annotations: dict[str, Any] = {
        "server_url": bpy.props.StringProperty(name="Server URL", default=DEFAULT_URL),
        "token": bpy.props.StringProperty(name="Token", subtype="PASSWORD", default=""),
        "client_uuid": bpy.props.StringProperty(name="Client UUID", default="",
                                                description="Sticky identity of this Blender on the bus"),
        "auto_connect": bpy.props.BoolProperty(name="Connect on start-up", default=False),
        "extra": bpy.props.CollectionProperty(type=BLENDBUS_PG_setting),
    }
    for decl in decls:
        annotations[prop_name(decl["key"])] = _property(decl)

    def draw(self: Any, context: Any) -> None:
        layout = self.layout
        for name in ("server_url", "token", "client_uuid", "auto_connect"):
            layout.prop(self, name)
        box = layout.box()
        box.label(text="Plugin settings")
        for decl in decls:
            box.prop(self, prop_name(decl["key"]))
        for item in self.extra:
            box.label(text=f"{item.key} = {'***' if 'key' in item.key else item.value}")

    return type("BLENDBUS_AddonPreferences", (bpy.types.AddonPreferences,),
                {"bl_idname": ADDON_ID, "__annotations__": annotations, "draw": draw, "declarations": decls})


def preferences() -> Any:
    return bpy.context.preferences.addons[ADDON_ID].preferences


LAUNCHES = {
    "gui": "in Blender, turn on the preference '{key}' (Edit > Preferences > Add-ons > blendbus)",
    "peer": "start the peer with `blendbus peer --set {key}=true`",
    "embedded": "start the server with `blendbus serve --embedded-blender --embedded-set {key}=true`",
}
"""How this Blender was started -> how its user turns a preference on (what a gate error tells them)."""


class BlenderRuntime:
    """Reads gates and settings from the addon preferences; wraps undoable commands."""

    def __init__(self, defaults: dict[str, Any] | None = None, launched: str = "gui") -> None:
        self.defaults = defaults or {}
        self.launched = launched
        self.scene = SceneLog(lambda: bpy.data.objects.keys())
        # Checkpoints only headless: reopening one in the GUI would make it the file the artist saves to.
        self.save_checkpoint = _save_checkpoint if bpy.app.background else None
        self.load_checkpoint = self._load_checkpoint if bpy.app.background else None
        self._origin: str | None = None
        """The open file's folder before a checkpoint was reopened (what `//` still means)."""

    def settle(self) -> None:
        settle()  # the depsgraph handler moves `scene` for what this evaluates

    def changed(self) -> None:
        settle()

    def how_to_enable(self, key: str) -> str:
        return LAUNCHES[self.launched].format(key=key)

    def setting(self, key: str) -> Any:
        prefs = preferences()
        name = prop_name(key)
        if hasattr(prefs, name):
            value = getattr(prefs, name)
            if any(d["key"] == key and d["type"] == "gate" for d in type(prefs).declarations):
                return {"true": True, "false": False}.get(value, value)  # the menu's ids, read as --set gives them
            return value
        for item in prefs.extra:
            if item.key == key:
                return _decode(item.value)
        return self.defaults.get(key)

    def blend_dir(self) -> str | None:
        if self._origin is not None:
            return self._origin or None
        return os.path.dirname(bpy.data.filepath) if bpy.data.filepath else None

    def _load_checkpoint(self, path: Path) -> None:
        if self._origin is None:
            self._origin = os.path.dirname(bpy.data.filepath) if bpy.data.filepath else ""
        bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
        settle()  # evaluate the reopened scene now: the depsgraph handler counts what it changed

    @contextmanager
    def unobserved(self) -> Iterator[None]:
        _State.quiet += 1
        try:
            yield
            settle()  # evaluate what the command left behind while still unobserved
        finally:
            _State.quiet -= 1

    @contextmanager
    def undo_step(self, label: str) -> Iterator[None]:
        # bpy.ops called from Python push no undo steps of their own, so one push after the
        # command makes the whole LLM action a single Ctrl-Z.
        yield
        if bpy.ops.ed.undo_push.poll():
            bpy.ops.ed.undo_push(message=label[:60])


def _save_checkpoint(path: Path) -> None:
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True, compress=False, check_existing=False)


def _decode(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


CONNECTION_SETTINGS = ("server_url", "token", "client_uuid")
"""Settings of the connection itself, not declared by any plugin."""


def set_setting(key: str, value: str) -> None:
    """Set a preference from text (the CLI's --set), typed by its declaration."""
    prefs = preferences()
    name = prop_name(key)
    decl = next((d for d in type(prefs).declarations if d["key"] == key), None)
    if decl is not None:
        from blendbus.command import Preference

        typed = Preference(**{**decl, "choices": tuple(decl.get("choices", []))}).coerce(value)
        setattr(prefs, name, str(typed).lower() if decl["type"] == "gate" else typed)  # the menu's item ids
        return
    if name in CONNECTION_SETTINGS:
        setattr(prefs, name, value)
        return
    known = [d["key"] for d in type(prefs).declarations] + list(CONNECTION_SETTINGS)
    hint = did_you_mean(key, known)
    if hint:  # a typo of a declared preference, not a plugin's key this peer has yet to receive
        raise ValueError(f"no preference {key!r}{hint}")
    for item in prefs.extra:
        if item.key == key:
            item.value = value
            return
    item = prefs.extra.add()
    item.key, item.value = key, value


def sticky_uuid() -> str:
    prefs = preferences()
    if not prefs.client_uuid:
        prefs.client_uuid = "blender-" + secrets.token_hex(4)
    return str(prefs.client_uuid)


# ---- connection state ---------------------------------------------------------------------
class _State:
    core: PeerCore | None = None
    thread: TransportThread | None = None
    idle_step = 0
    quiet = 0
    """Depth of scene-neutral commands running (BlenderRuntime.unobserved): their updates are not reported."""


def new_core(server: str, token: str | None, uuid: str, state_dir: Path | None = None,
             launched: str = "gui") -> PeerCore:
    """A peer on this Blender; its synced handlers and default output folder live under `state_dir`
    (default: blendbus's folder in Blender's user data). `launched`: how it was started (LAUNCHES)."""
    state_dir = state_dir or Path(bpy.utils.user_resource("DATAFILES", path="blendbus"))
    return PeerCore(
        lambda: http_connect(server, token or None),
        uuid=uuid, runtime=BlenderRuntime(launched=launched), blender_version=bpy.app.version_string,
        capabilities={"background": bool(bpy.app.background)}, handler_root=state_dir / "handlers",
        output_root=state_dir / "output" / uuid, checkpoint_root=state_dir / "checkpoints" / uuid,
    )


@bpy.app.handlers.persistent
def _scene_updated(scene: Any, depsgraph: Any) -> None:
    """depsgraph_update_post: tell the server which objects changed (the transport debounces), and
    move the scene's revision when something changed that a later call could overwrite: geometry,
    transforms, shading, or which objects exist (a selection alone moves nothing)."""
    core = _State.core
    if core is None or _State.quiet:
        return
    objects = [u for u in depsgraph.updates if isinstance(u.id, bpy.types.Object)]
    core.link.scene_changed({u.id.name for u in objects})
    touched = {u.id.name for u in objects if u.is_updated_geometry or u.is_updated_transform or u.is_updated_shading}
    log = core.runtime.scene
    if touched or log.objects_changed() or any(
            u.is_updated_geometry or u.is_updated_shading for u in depsgraph.updates if not isinstance(u.id, bpy.types.Object)):
        log.moved(touched)


def settle() -> None:
    """After a job: evaluate what it changed, so the depsgraph handler sees it now. Without a window
    (headless) nothing else would evaluate the scene until the next operator."""
    try:
        bpy.context.view_layer.update()
    except (AttributeError, RuntimeError):  # no view layer in this context: nothing to evaluate
        pass


def start(core: PeerCore) -> TransportThread:
    stop()
    _State.core, _State.thread = core, TransportThread(core.link).start()
    if _scene_updated not in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.append(_scene_updated)
    return _State.thread


def stop() -> None:
    if _scene_updated in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.remove(_scene_updated)
    if _State.thread is not None:
        _State.thread.stop()
    if _State.core is not None:
        _State.core.queue.close()
    _State.core = _State.thread = None


def drain_timer() -> float | None:
    """GUI drain loop: run queued jobs within a time budget; reschedule at once while busy."""
    core = _State.core
    if core is None:
        return None
    ran = core.drain(DRAIN_BUDGET_S)
    if ran:
        settle()
    if ran or len(core.queue) or core.pending:
        _State.idle_step = 0
        return 0.0
    _State.idle_step = min(_State.idle_step + 1, len(IDLE_INTERVALS) - 1)
    return IDLE_INTERVALS[_State.idle_step]


# ---- operators and panel --------------------------------------------------------------------
class BLENDBUS_OT_connect(bpy.types.Operator):
    bl_idname = "blendbus.connect"
    bl_label = "Connect to blendbus"
    bl_description = "Join the blendbus server's bus as a Blender peer"

    def execute(self, context: Any) -> set[str]:
        prefs = preferences()
        start(new_core(prefs.server_url, prefs.token, sticky_uuid()))
        if not bpy.app.timers.is_registered(drain_timer):
            bpy.app.timers.register(drain_timer, first_interval=0.0, persistent=True)
        return {"FINISHED"}


class BLENDBUS_OT_disconnect(bpy.types.Operator):
    bl_idname = "blendbus.disconnect"
    bl_label = "Disconnect from blendbus"

    def execute(self, context: Any) -> set[str]:
        stop()
        return {"FINISHED"}


class BLENDBUS_PT_panel(bpy.types.Panel):
    bl_label = "blendbus"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "blendbus"

    def draw(self, context: Any) -> None:
        layout = self.layout
        core = _State.core
        state = core.link.state if core else "off"
        layout.label(text=f"State: {state}", icon="LINKED" if state == "connected" else "UNLINKED")
        if core and core.link.last_error:
            layout.label(text=core.link.last_error[:80], icon="ERROR")
        row = layout.row()
        row.operator(BLENDBUS_OT_connect.bl_idname, text="Connect")
        row.operator(BLENDBUS_OT_disconnect.bl_idname, text="Disconnect")
        if core:
            layout.label(text=f"Peer {core.uuid}")
            for job in list(core.recent)[:8]:
                layout.label(text=f"{job.command}: {job.status} ({job.duration_s * 1000:.0f} ms)")


_classes: list[type] = []


def register() -> None:
    bind_bundled_handlers()
    prefs_cls = _preferences_class(declared_preferences())
    _classes[:] = [BLENDBUS_PG_setting, prefs_cls, BLENDBUS_OT_connect, BLENDBUS_OT_disconnect, BLENDBUS_PT_panel]
    for cls in _classes:
        bpy.utils.register_class(cls)
    if not bpy.app.background and preferences().auto_connect:
        bpy.app.timers.register(lambda: bpy.ops.blendbus.connect() and None, first_interval=0.5)


def unregister() -> None:
    stop()
    if bpy.app.timers.is_registered(drain_timer):
        bpy.app.timers.unregister(drain_timer)
    for cls in reversed(_classes):
        bpy.utils.unregister_class(cls)
    _classes.clear()
