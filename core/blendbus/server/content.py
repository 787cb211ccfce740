"""A handler's content blocks (protocol.CONTENT_KEY, and `_images`) as MCP content: images, audio,
embedded resources and resource links, in the order the handler gave them."""

from __future__ import annotations

from typing import Any

import mcp_types as types


def mcp_content(block: dict[str, Any]) -> types.ImageContent | types.AudioContent | types.EmbeddedResource | \
        types.ResourceLink:
    """One block, already checked by protocol.content_problem, as the MCP content type it names."""
    kind, mime = block["type"], block.get("mime_type")
    if kind == "image":
        return types.ImageContent(type="image", data=block["data"], mime_type=mime or "image/png")
    if kind == "audio":
        return types.AudioContent(type="audio", data=block["data"], mime_type=mime)
    if kind == "resource_link":
        return types.ResourceLink(type="resource_link", uri=block["uri"], name=block["name"], mime_type=mime,
                                  description=block.get("description"))
    if isinstance(block.get("text"), str):
        contents: types.TextResourceContents | types.BlobResourceContents = types.TextResourceContents(
            uri=block["uri"], mime_type=mime, text=block["text"])
    else:
        contents = types.BlobResourceContents(uri=block["uri"], mime_type=mime, blob=block["blob"])
    return types.EmbeddedResource(type="resource", resource=contents)
