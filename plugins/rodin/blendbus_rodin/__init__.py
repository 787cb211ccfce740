"""blendbus-rodin: generate 3D models with Hyper3D Rodin (main site or fal.ai) and import them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, Field

from blendbus import Command, Preference, hookimpl

from .addon import FAL_AI, GATE, MAIN_SITE, SERVICE

__version__ = "0.2.4"
HANDLERS = "blendbus_rodin.addon.handlers"


BBOX = "[x, y, z] proportions"
WAIT = ("Wait for it, then import the model under this name. Takes minutes: with a short timeout_s,"
        " blender_get_job(job_id) collects it later.")


class Generation(BaseModel):
    bbox_condition: list[Annotated[float, Field(gt=0)]] | None = Field(default=None, min_length=3, max_length=3,
                                                                        description=BBOX)
    wait_and_import_as: str | None = Field(default=None, min_length=1, max_length=63, description=WAIT)


class ViaText(Generation):
    text_prompt: str = Field(min_length=1, max_length=2000, description="What to generate")


class ViaImages(Generation):
    input_image_paths: list[str] | None = Field(default=None, min_length=1, max_length=5,
                                                description="PNG, JPEG or WebP files in the peer's output folder,"
                                                " e.g. 'refs/chair.png' (MAIN_SITE mode)")
    input_image_urls: list[Annotated[str, Field(max_length=2048, pattern=r"^https?://")]] | None = Field(
        default=None, min_length=1, max_length=5, description="Public image URLs (FAL_AI mode), fetched by fal.ai")


ID = r"^[A-Za-z0-9_-]{1,200}$"
"""Ids go into API URL paths and bodies: nothing that could change the path or the host."""


class Poll(BaseModel):
    subscription_key: str | None = Field(default=None, pattern=ID, description="MAIN_SITE job key")
    request_id: str | None = Field(default=None, pattern=ID, description="FAL_AI request id")


class Import(BaseModel):
    name: str = Field(min_length=1, max_length=63, description="Name of the imported object")
    task_uuid: str | None = Field(default=None, pattern=ID, description="MAIN_SITE task uuid")
    request_id: str | None = Field(default=None, pattern=ID, description="FAL_AI request id")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    SERVICE.register_preferences(
        register,
        Preference("rodin.mode", "enum", MAIN_SITE, "Which Rodin service", choices=(MAIN_SITE, FAL_AI)),
        Preference("rodin.fal_url", "str", "https://queue.fal.run/fal-ai/hyper3d", "fal.ai queue API"),
        Preference("rodin.tier", "enum", "Regular", "Rodin quality tier",
                   choices=("Sketch", "Regular", "Detail", "Smooth")),
        Preference("rodin.poll_interval_s", "float", 5.0, "Seconds between status checks while waiting"))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    open_world = {"read_only": False, "open_world": True}
    register(SERVICE.status_command("Whether Rodin is enabled, its mode, and whether a key is set.", HANDLERS,
                                    name="get_hyper3d_status", timeout=10, open_world=None))
    register(Command("generate_hyper3d_model_via_text", "Start a Rodin generation from a text prompt; returns the ids to poll and"
                     " import with.",
                     f"{HANDLERS}:generate_via_text", params=ViaText, gate=GATE, annotations=open_world, timeout=900,
                     undo=True))
    register(Command("generate_hyper3d_model_via_images", "Start a Rodin generation from images (files in MAIN_SITE mode, URLs in"
                     " FAL_AI mode).", f"{HANDLERS}:generate_via_images",
                     params=ViaImages, gate=GATE, annotations=open_world, timeout=900, undo=True))
    register(Command("poll_rodin_job_status", "Status of a Rodin generation: queued, generating, done or failed.",
                     f"{HANDLERS}:poll_job_status", params=Poll, gate=GATE,
                     annotations={"read_only": True, "open_world": True}, timeout=30))
    register(Command("import_generated_asset", "Download a finished Rodin model and import it under `name`.",
                     f"{HANDLERS}:import_generated_asset", params=Import, gate=GATE, annotations=open_world,
                     undo=True, timeout=300))
