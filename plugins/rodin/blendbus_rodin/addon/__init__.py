"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

GATE = "rodin.enabled"
MAIN_SITE, FAL_AI = "MAIN_SITE", "FAL_AI"
"""The two Rodin services (preference `rodin.mode`)."""
