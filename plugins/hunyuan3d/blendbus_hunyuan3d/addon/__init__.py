"""Runs inside Blender. The names both sides use live here: the server-side declarations import them."""

from blendbus.online import OnlineService

SERVICE = OnlineService("hunyuan3d", "Hunyuan3D", "https://ai3d.tencentcloudapi.com", timeout_s=60.0,
                        credentials={"secret_id": "Tencent Cloud SecretId",
                                     "secret_key": "Tencent Cloud SecretKey (only ever used to sign)"},
                        api_url_description="Tencent Cloud ai3d endpoint")
GATE = SERVICE.gate
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
