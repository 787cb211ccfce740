"""blendbus-rodin: generate 3D models with Hyper3D Rodin (main site or fal.ai) and import them."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from blendbus import Command, Preference, hookimpl

__version__ = "0.1.0"
HANDLERS = "blendbus_rodin.addon.handlers"
GATE = "rodin.enabled"
BBox = list[float] | None


class ViaText(BaseModel):
    text_prompt: str = Field(min_length=1, max_length=2000, description="What to generate")
    bbox_condition: BBox = Field(default=None, min_length=3, max_length=3, description="[x, y, z] proportions")


class ViaImages(BaseModel):
    input_image_paths: list[str] | None = Field(default=None, max_length=5, description="Image files on the Blender side (MAIN_SITE)")
    input_image_urls: list[str] | None = Field(default=None, max_length=5, description="Image URLs (FAL_AI)")
    bbox_condition: BBox = Field(default=None, min_length=3, max_length=3, description="[x, y, z] proportions")


class Poll(BaseModel):
    subscription_key: str | None = Field(default=None, description="MAIN_SITE job key")
    request_id: str | None = Field(default=None, description="FAL_AI request id")


class Import(BaseModel):
    name: str = Field(min_length=1, max_length=63, description="Name of the imported object")
    task_uuid: str | None = Field(default=None, description="MAIN_SITE task uuid")
    request_id: str | None = Field(default=None, description="FAL_AI request id")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    register(Preference(GATE, "bool", False, "Allow Hyper3D Rodin tools"))
    register(Preference("rodin.mode", "enum", "MAIN_SITE", "Which Rodin service", choices=("MAIN_SITE", "FAL_AI")))
    register(Preference("rodin.api_key", "str", "", "Rodin (or fal.ai) API key", secret=True))
    register(Preference("rodin.api_url", "str", "https://hyperhuman.deemos.com/api/v2", "Rodin main-site API"))
    register(Preference("rodin.fal_url", "str", "https://queue.fal.run/fal-ai/hyper3d", "fal.ai queue API"))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    open_world = {"read_only": False, "open_world": True}
    register(Command("get_hyper3d_status", "Whether Rodin is enabled, its mode, and whether a key is set.",
                     f"{HANDLERS}:get_hyper3d_status", annotations={"read_only": True}, timeout=10))
    register(Command("generate_hyper3d_model_via_text", "Start a Rodin generation from a text prompt.",
                     f"{HANDLERS}:generate_via_text", params=ViaText, gate=GATE, annotations=open_world, timeout=60))
    register(Command("generate_hyper3d_model_via_images", "Start a Rodin generation from images (paths on the"
                     " main site, URLs on fal.ai).", f"{HANDLERS}:generate_via_images", params=ViaImages, gate=GATE,
                     annotations=open_world, timeout=120))
    register(Command("poll_rodin_job_status", "Status of a Rodin generation: queued, generating, done or failed.",
                     f"{HANDLERS}:poll_job_status", params=Poll, gate=GATE,
                     annotations={"read_only": True, "open_world": True}, timeout=30))
    register(Command("import_generated_asset", "Download a finished Rodin model and import it under `name`.",
                     f"{HANDLERS}:import_generated_asset", params=Import, gate=GATE, annotations=open_world,
                     undo=True, timeout=300))
