"""A large result posted raw beside the MCP endpoint (server/uploads.py): taken as the same update sent
as `blender_job_update` would be, refused with the same codes, and used by every HTTP peer."""

from __future__ import annotations

import httpx2
import pytest

from blendbus import paging
from blendbus import protocol as p
from blendbus.client import ToolError, call, connect, post_result
from blendbus.testing import call_envelope, serve_http

pytestmark = pytest.mark.anyio

TEXT = "é\"\\\n\x00 ascii " * (p.UPLOAD_MIN_BYTES // 12)
"""Over the upload size, with what JSON escapes and characters of two bytes."""


async def _peer_with_a_job(peer, caller) -> tuple[dict[str, str], str]:
    token = (await call(peer, p.REGISTER, {"client_uuid": "uploader"}))["peer_token"]
    sent = await call_envelope(caller, "blender_send_message", {
        "payload": {"message_type": p.JOB_DISPATCH, "script": "pass"}, "wait": False})
    polled = await call(peer, p.POLL, {"client_uuid": "uploader", "peer_token": token, "ack": [], "wait_s": 5})
    assert [payload["job_id"] for payload in polled["payloads"]] == [sent["job_id"]]
    return {"client_uuid": "uploader", "peer_token": token, "job_id": sent["job_id"]}, sent["job_id"]


async def _whole(caller, job_id: str) -> str:
    """The result text, paged back as a default client reads it."""
    env = await call_envelope(caller, "blender_get_job", {"job_id": job_id, "wait_s": 10})
    assert env["status"] == p.COMPLETED, env
    text, offset = env["result"], env.get("next_offset")
    while offset is not None:
        page = await call_envelope(caller, "blender_get_job", {"job_id": job_id, "offset": offset})
        text, offset = text + page["result"], page["next_offset"]
    return text


@pytest.mark.parametrize("result", [TEXT, {"rows": [TEXT[:1000]] * 1200}], ids=["text", "json"])
async def test_a_posted_result_reaches_its_caller_intact(blendbus_server, result):
    async with serve_http(blendbus_server) as url, connect(url) as peer, connect(url) as caller:
        head, job_id = await _peer_with_a_job(peer, caller)
        answer = await post_result(peer, {**head, "status": p.COMPLETED, "result_format": paging.result_format(result)},
                                   paging.result_text(result).encode())
        assert answer == {"job_id": job_id, "accepted": True, "status": p.COMPLETED}
        assert await _whole(caller, job_id) == paging.result_text(result)


async def test_a_posted_result_is_refused_as_a_tool_call_would_be(blendbus_server):
    async with serve_http(blendbus_server) as url, connect(url) as peer, connect(url) as caller:
        head, job_id = await _peer_with_a_job(peer, caller)
        with pytest.raises(ToolError) as refused:
            await post_result(peer, {**head, "peer_token": "forged", "status": p.COMPLETED}, b"x")
        assert refused.value.code == "PeerAuthError"
        with pytest.raises(ToolError) as refused:
            await post_result(peer, {**head, "status": "finished"}, b"x")
        assert refused.value.code == p.INVALID and "status" in str(refused.value)
        async with httpx2.AsyncClient() as http:
            for body, why in [(b"no head line", "line of JSON"), (b'{"job_id": 1\n', "not JSON"),
                              (b'[]\nx', "JSON object"), (b'{"result_format": "json"}\n{', "not JSON"),
                              (b'{"client_uuid": "uploader"}\n\xff', "not UTF-8")]:
                response = await http.post(url + p.RESULTS_PATH, content=body)
                assert response.status_code == 400 and why in response.json()["error"], (body, response.text)
        # Nothing was taken: the job still waits for its peer's reply
        assert (await call_envelope(caller, "blender_get_job", {"job_id": job_id}))["status"] == p.RUNNING


async def test_a_token_without_the_peer_role_cannot_post_results(blendbus_server):
    tokens = {"llm-token": {"user": "alice", "role": "llm"}, "peer-token": {"user": "alice", "role": "peer"}}
    async with serve_http(blendbus_server, tokens=tokens) as url, httpx2.AsyncClient() as http:
        assert (await http.post(url + p.RESULTS_PATH, content=b"{}\n")).status_code == 401
        llm = await http.post(url + p.RESULTS_PATH, content=b"{}\n", headers={"authorization": "Bearer llm-token"})
        assert llm.status_code == 403 and "peer role" in llm.json()["error"]
        peer = await http.post(url + p.RESULTS_PATH, content=b"{}\n", headers={"authorization": "Bearer peer-token"})
        assert peer.status_code == 400 and "client_uuid" in peer.json()["error"]
