"""`blendbus new-plugin NAME`: a plugin skeleton whose tests pass as soon as it is installed.

The template lives in `blendbus/templates/plugin/`; `__plugin__`, `__package__` and `__dist__` in
file names and contents become the plugin's name, import package and distribution, and
`__blendbus_range__` the range of blendbus releases this one is compatible with.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from . import __version__
from .command import NAME_RE

TEMPLATE = "templates/plugin"


def names(plugin: str) -> dict[str, str]:
    return {"__plugin__": plugin, "__package__": f"blendbus_{plugin}", "__dist__": f"blendbus-{plugin.replace('_', '-')}",
            "__blendbus_range__": compatible_range(__version__)}


def compatible_range(version: str) -> str:
    """'0.2.0' -> '>=0.2,<0.3': before 1.0 a minor release may change the plugin API."""
    major, minor = (int(x) for x in version.split(".")[:2])
    return f">={major}.{minor},<{major}.{minor + 1}" if major == 0 else f">={major}.{minor},<{major + 1}"


def render(plugin: str, dest: Path) -> list[Path]:
    """Write the skeleton for `plugin` into `dest` (which must be empty or absent)."""
    if not NAME_RE.match(plugin):
        raise ValueError(f"plugin name must match {NAME_RE.pattern} (it prefixes tool names), not {plugin!r}")
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty")
    subst = names(plugin)
    written = []
    root = resources.files("blendbus").joinpath(TEMPLATE)
    for source in _walk(root):
        rel = source["rel"]
        for key, value in subst.items():
            rel = rel.replace(key, value)
        text = source["text"]
        for key, value in subst.items():
            text = text.replace(key, value)
        target = dest / rel.removesuffix(".tmpl")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(target)
    return written


def _walk(node: resources.abc.Traversable, prefix: str = "") -> list[dict[str, str]]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                out += _walk(child, rel + "/")
        elif child.name.endswith(".tmpl"):
            out.append({"rel": rel, "text": child.read_text()})
    return out
