"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

from blendbus.online import OnlineService

SERVICE = OnlineService("polyhaven", "Poly Haven", "https://api.polyhaven.com")
GATE = SERVICE.gate
