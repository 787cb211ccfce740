"""blendbus-hunyuan3d: generate 3D models from text or an image with Tencent Hunyuan3D, and import them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from blendbus import Command, Preference, hookimpl

from .addon import EDITIONS, GATE, INPUTS, LOCAL_API, OFFICIAL_API, RESULT_FORMATS, SERVICE

__version__ = "0.1.4"
HANDLERS = "blendbus_hunyuan3d.addon.handlers"
JOB_ID = r"^[A-Za-z0-9_-]{1,128}$"
"""Ids go into API paths and bodies: nothing that could change the path or the host."""
WAIT = ("Wait for it, then import the model under this name. Takes minutes: with a short timeout_s,"
        " blender_get_job(job_id) collects it later.")


class Generate(BaseModel):
    text_prompt: str | None = Field(default=None, min_length=1, max_length=1024, description="What to generate")
    input_image_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://",
                                        description="An image to turn into a model (OFFICIAL_API mode)")
    input_image_path: str | None = Field(default=None, max_length=1024, description=(
        "A PNG, JPEG or WebP in the peer's output folder, e.g. 'refs/chair.png'"))
    result_format: Literal[RESULT_FORMATS] = Field(default="GLB", description="GLB imports best")  # type: ignore[valid-type]
    enable_pbr: bool = Field(default=False, description="Physically based materials")
    face_count: int | None = Field(default=None, ge=3000, le=1_500_000, description="Target faces (pro edition)")
    wait_and_import_as: str | None = Field(default=None, min_length=1, max_length=63, description=WAIT)

    # Tencent takes a prompt or an image, never both: the server refuses anything else before dispatch.
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": [k]} for k in INPUTS]})


class Job(BaseModel):
    job_id: str = Field(pattern=JOB_ID, description="The job_id generate returned")


class Import(Job):
    name: str = Field(min_length=1, max_length=63, description="Name of the imported object")
    target_size: float | None = Field(default=None, gt=0, le=10000,
                                      description="Scale so the largest dimension is this (m)")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    SERVICE.register_preferences(
        register,
        Preference("hunyuan3d.mode", "enum", OFFICIAL_API, "Tencent Cloud, or your own Hunyuan3D-2 server",
                   choices=(OFFICIAL_API, LOCAL_API)),
        Preference("hunyuan3d.region", "str", "ap-guangzhou", "Tencent Cloud region"),
        Preference("hunyuan3d.edition", "enum", "pro", "Tencent edition: pro, base or rapid", choices=tuple(EDITIONS)),
        Preference("hunyuan3d.local_url", "str", "http://localhost:8081", "A Hunyuan3D-2 api_server.py"),
        Preference("hunyuan3d.poll_interval_s", "float", 5.0, "Seconds between status checks while waiting"))


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    open_world = {"read_only": False, "open_world": True}
    register(SERVICE.status_command("Whether Hunyuan3D is enabled, its mode and edition, and whether its keys are"
                                    " set.", HANDLERS, open_world=False))
    register(Command("generate_hunyuan3d_model", "Start a Hunyuan3D generation from text, an image URL or"
                     " an image in the peer's output folder; returns its job_id. Generation takes minutes.",
                     f"{HANDLERS}:generate_hunyuan3d_model", params=Generate, gate=GATE, annotations=open_world,
                     timeout=900, undo=True))
    register(Command("poll_hunyuan_job_status", "A generation's status (WAIT, RUN, DONE or FAIL, in plain words),"
                     " with a preview image URL once done.", f"{HANDLERS}:poll_hunyuan_job_status", params=Job,
                     gate=GATE, annotations={"read_only": True, "open_world": True}, timeout=60))
    register(Command("import_generated_asset_hunyuan", "Import a finished generation into the scene, named and optionally"
                     " scaled.",
                     f"{HANDLERS}:import_generated_asset_hunyuan", params=Import, gate=GATE, annotations=open_world,
                     timeout=300, undo=True))
