"""blendbus-sketchfab: search, preview and import downloadable Sketchfab models."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from blendbus import Command, Preference, hookimpl

from .addon import GATE, SERVICE

__version__ = "0.1.4"
HANDLERS = "blendbus_sketchfab.addon.handlers"
OPEN = {"read_only": True, "destructive": False, "open_world": True}


class Search(BaseModel):
    query: str = Field(min_length=1, max_length=200, description="Search words")
    categories: str | None = Field(default=None, description="Comma-separated Sketchfab category slugs")
    count: int = Field(default=20, ge=1, le=24)
    downloadable: bool = Field(default=True, description="Only models that can be downloaded")
    cursor: str | None = Field(default=None, description="next_cursor of a previous page")


class Model(BaseModel):
    uid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$", description="Sketchfab model uid")


class Download(Model):
    target_size: float | None = Field(default=None, gt=0, le=10000, description="Scale so the largest dimension is this (m)")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    SERVICE.register_preferences(register)


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(SERVICE.status_command("Whether Sketchfab is enabled and the API key works.", HANDLERS))
    register(Command("search_sketchfab_models", "Search Sketchfab models: uid, name, author, license, faces,"
                     " thumbnail; paged by cursor.", f"{HANDLERS}:search_sketchfab_models", params=Search, gate=GATE,
                     annotations=OPEN, timeout=30))
    register(Command("get_sketchfab_model_preview", "A model's thumbnail as an image, with name, author and license.",
                     f"{HANDLERS}:get_sketchfab_model_preview", params=Model, gate=GATE, annotations=OPEN, timeout=30))
    register(Command("download_sketchfab_model", "Download a model's glTF and import it, optionally scaled so its"
                     " largest dimension equals target_size.", f"{HANDLERS}:download_sketchfab_model",
                     params=Download, gate=GATE, annotations={"read_only": False, "open_world": True}, undo=True,
                     timeout=300))
