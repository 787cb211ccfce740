"""Tencent Cloud API 3.0 for the ai3d service: TC3-HMAC-SHA256 signing and calls. Stdlib only.

The secret key never leaves the peer: it only keys the HMAC chain, and no message carries it.
Tencent answers errors with HTTP 200 and `Response.Error.{Code, Message}`; they are raised as
TencentError with the code first, since the code (`AuthFailure.SignatureFailure`, ...) is what a
user looks up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any

from blendbus_addon.http import request_json

SERVICE = "ai3d"
VERSION = "2025-05-13"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host;x-tc-action"


class TencentError(RuntimeError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"Tencent Cloud answered {code}: {message}")
        self.code = code


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(*, secret_id: str, secret_key: str, host: str, action: str, body: bytes, timestamp: int,
         region: str, service: str = SERVICE, version: str = VERSION) -> dict[str, str]:
    """The headers of a signed POST of `body` (which must be sent byte for byte as signed)."""
    date = time.strftime("%Y-%m-%d", time.gmtime(timestamp))
    canonical = (f"POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\nx-tc-action:{action.lower()}\n\n"
                 f"{SIGNED_HEADERS}\n{_sha256(body)}")
    scope = f"{date}/{service}/tc3_request"
    to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{_sha256(canonical.encode())}"
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "Authorization": f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={SIGNED_HEADERS},"
                         f" Signature={signature}",
        "Content-Type": CONTENT_TYPE,
        "Host": host,
        "X-TC-Action": action,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": version,
        "X-TC-Region": region,
    }


def call(endpoint: str, action: str, payload: dict[str, Any], *, secret_id: str, secret_key: str, region: str,
         timeout: float) -> dict[str, Any]:
    """One API action; returns its `Response` (minus RequestId), or raises TencentError."""
    if not secret_id or not secret_key:
        raise PermissionError("no Tencent Cloud keys: set the addon preferences 'hunyuan3d.secret_id' and"
                              " 'hunyuan3d.secret_key'")
    body = json.dumps(payload, separators=(",", ":")).encode()
    host = urllib.parse.urlsplit(endpoint).netloc
    headers = sign(secret_id=secret_id, secret_key=secret_key, host=host, action=action, body=body,
                   timestamp=int(time.time()), region=region)
    answer = request_json(endpoint.rstrip("/") + "/", method="POST", data=body, content_type=CONTENT_TYPE,
                          headers=headers, timeout=timeout)
    response = answer.get("Response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        raise TencentError("InvalidResponse", f"{action} answered without a Response object")
    error = response.get("Error")
    if isinstance(error, dict):
        raise TencentError(str(error.get("Code", "UnknownError")), str(error.get("Message", "")))
    return response
