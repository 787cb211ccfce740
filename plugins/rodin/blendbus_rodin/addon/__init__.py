"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

from blendbus.online import OnlineService

SERVICE = OnlineService("rodin", "Hyper3D Rodin", "https://hyperhuman.deemos.com/api/v2", timeout_s=60.0,
                        credentials={"api_key": "Rodin (or fal.ai) API key"},
                        api_url_description="Rodin main-site API")
GATE = SERVICE.gate
MAIN_SITE, FAL_AI = "MAIN_SITE", "FAL_AI"
"""The two Rodin services (preference `rodin.mode`)."""
