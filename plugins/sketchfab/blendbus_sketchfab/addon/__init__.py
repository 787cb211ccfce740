"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

from blendbus.online import OnlineService

SERVICE = OnlineService("sketchfab", "Sketchfab", "https://api.sketchfab.com/v3",
                        credentials={"api_key": "Sketchfab API token"})
GATE = SERVICE.gate
