"""blendbus-polyhaven: Poly Haven HDRIs, textures and models in Blender."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from blendbus import Command, Completion, Preference, Prompt, PromptArgument, hookimpl

from .addon import GATE, SERVICE

__version__ = "0.2.4"
HANDLERS = "blendbus_polyhaven.addon.handlers"
AssetType = Literal["hdris", "textures", "models", "all"]
OPEN = {"read_only": True, "destructive": False, "open_world": True}
IMPORTS = {"read_only": False, "destructive": False, "open_world": True}
ID_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Ids go into API URL paths: nothing that could change the path or the host."""


class Categories(BaseModel):
    asset_type: AssetType


class Search(BaseModel):
    asset_type: AssetType = "all"
    categories: str | None = Field(default=None, description="Comma-separated categories, all must match")
    query: str | None = Field(default=None, max_length=200, description="Words matched against names and tags")
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class Download(BaseModel):
    asset_id: str = Field(min_length=1, max_length=200, pattern=ID_PATTERN,
                          description="Poly Haven asset id, e.g. 'kloofendal_43d_clear_puresky'")
    asset_type: Literal["hdris", "textures", "models"]
    resolution: str = Field(default="1k", pattern=r"^\d+k$", description="1k, 2k, 4k, ...")
    file_format: str | None = Field(default=None, max_length=10, description="hdr/exr, jpg/png, gltf/fbx/blend")


class SetTexture(BaseModel):
    object_name: str = Field(description="Mesh object to texture")
    texture_id: str = Field(pattern=ID_PATTERN, description="Id of a texture downloaded with blender_download_polyhaven_asset")


@hookimpl
def register_preferences(register: Callable[[Preference], None]) -> None:
    SERVICE.register_preferences(register)


@hookimpl
def register_commands(register: Callable[[Command], None]) -> None:
    register(SERVICE.status_command("Whether Poly Haven tools are enabled, and how to enable them.", HANDLERS,
                                    timeout=10, open_world=None))
    register(Command("get_polyhaven_categories", "Poly Haven categories of an asset type, with asset counts.",
                     f"{HANDLERS}:get_polyhaven_categories", params=Categories, gate=GATE, annotations=OPEN,
                     timeout=30))
    register(Command("search_polyhaven_assets", "Search Poly Haven assets by type, categories and words;"
                     " most downloaded first, paged.", f"{HANDLERS}:search_polyhaven_assets", params=Search,
                     gate=GATE, annotations=OPEN, timeout=30))
    register(Command("download_polyhaven_asset", "Download a Poly Haven asset into the scene: an HDRI becomes the"
                     " world lighting, a texture a PBR material, a model imported objects.",
                     f"{HANDLERS}:download_polyhaven_asset", params=Download, gate=GATE, annotations=IMPORTS,
                     undo=True, timeout=300))
    register(Command("set_texture", "Apply a downloaded Poly Haven texture to a mesh object.",
                     f"{HANDLERS}:set_texture", params=SetTexture, gate=GATE,
                     annotations={"read_only": False, "destructive": False, "open_world": False}, undo=True))


LIGHT_WITH_HDRI = """Light the scene with the Poly Haven HDRI "{hdri}":
1. blender_download_polyhaven_asset(asset_id="{hdri}", asset_type="hdris", resolution="2k") makes it the world.
2. Render from the camera with blender_render, and say how the light and the reflections changed.
"""


@hookimpl
def register_prompts(register: Callable[[Prompt], None]) -> None:
    most_downloaded = Completion("search_polyhaven_assets", {"asset_type": "hdris", "limit": 100}, items="assets", key="id")
    register(Prompt("light_with_hdri", "Light the scene with a Poly Haven HDRI, and render to see it.", LIGHT_WITH_HDRI,
                    (PromptArgument("hdri", "The HDRI's Poly Haven id, e.g. studio_small_09", required=True,
                                    complete=most_downloaded),),
                    title="Light with an HDRI"))
