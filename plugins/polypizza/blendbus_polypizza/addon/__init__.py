"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

from blendbus.online import OnlineService

SERVICE = OnlineService("polypizza", "Poly Pizza", "https://api.poly.pizza/v1.1",
                        credentials={"api_key": "Poly Pizza API key (sent as x-auth-token)"})
GATE = SERVICE.gate
CATEGORIES = ("Food & Drink", "Clutter", "Weapons", "Transport", "Furniture & Decor", "Objects", "Nature", "Animals",
              "Buildings", "People & Characters", "Scenes & Levels", "Other")
"""Poly Pizza's categories, in the order of their numeric ids (the API takes `Category=<index>`)."""
LICENSES = {"cc-by": 0, "cc0": 1}
"""The `license` argument and Poly Pizza's numeric `License` filter."""
