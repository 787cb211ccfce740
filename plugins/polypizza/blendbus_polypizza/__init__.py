"""blendbus-polypizza: search Poly Pizza's free low-poly models and import them, with attribution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from blendbus import Command, Preference, hookimpl

from .addon import CATEGORIES, GATE, LICENSES, SERVICE

__version__ = "0.1.4"
HANDLERS = "blendbus_polypizza.addon.handlers"
OPEN = {"read_only": True, "destructive": False, "open_world": True}
MODEL_ID = r"^[A-Za-z0-9_-]{1,64}$"
"""Ids go into API URL paths: nothing that could change the path or the host."""


class Search(BaseModel):
    query: str = Field(min_length=1, max_length=100, pattern=r"^[^/?#\\]+$", description="Search words")
    category: str | None = Field(default=None, description="One of: " + ", ".join(CATEGORIES))
    license: Literal[tuple(LICENSES)] | None = Field(  # type: ignore[valid-type]
        default=None, description="'cc0' (no attribution needed) or 'cc-by' (credit the author)")
    animated: bool | None = Field(default=None, description="Only animated models")
    limit: int = Field(default=16, ge=1, le=32, description="Models per page")
    page: int = Field(default=0, ge=0, le=1000, description="Page number, from 0")


class Download(BaseModel):
    model_id: str = Field(pattern=MODEL_ID, description="The ID of a search result")
    target_size: float | None = Field(default=None, gt=0, le=10000,
                                      description="Scale so the largest dimension is this (m)")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    SERVICE.register_preferences(register)


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(SERVICE.status_command("Whether Poly Pizza is enabled and its API key works.", HANDLERS))
    register(Command("search_polypizza_models", "Search Poly Pizza's free low-poly models: id, title, creator, licence,"
                     " triangles, thumbnail; paged.",
                     f"{HANDLERS}:search_polypizza_models", params=Search, gate=GATE, annotations=OPEN, timeout=30))
    register(Command("download_polypizza_model", "Import a Poly Pizza model, optionally scaled to target_size. Returns the"
                     " attribution to credit.",
                     f"{HANDLERS}:download_polypizza_model", params=Download, gate=GATE,
                     annotations={"read_only": False, "open_world": True}, undo=True, timeout=300))
