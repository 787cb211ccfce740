"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

GATE = "hunyuan3d.enabled"
OFFICIAL_API, LOCAL_API = "OFFICIAL_API", "LOCAL_API"
"""Tencent Cloud's ai3d service, or a Hunyuan3D-2 `api_server.py` of your own (preference `hunyuan3d.mode`)."""
EDITIONS = {"pro": "Pro", "base": "", "rapid": "Rapid"}
"""Preference `hunyuan3d.edition` -> the infix of its actions (SubmitHunyuanTo3D<infix>Job, QueryHunyuanTo3D<infix>Job)."""
RESULT_FORMATS = ("GLB", "OBJ", "FBX", "STL", "USDZ")
"""What the service can produce; Blender imports GLB, OBJ and FBX."""
STATES = {"WAIT": "waiting in Tencent's queue", "RUN": "generating", "DONE": "done", "FAIL": "failed"}
"""Tencent's job states in plain words."""
INPUTS = ("text_prompt", "input_image_url", "input_image_path")
"""What a generation starts from: exactly one of them."""
