"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

GATE = "sketchfab.enabled"
