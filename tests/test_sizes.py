"""Large results end to end: peer -> server -> MCP client, over real HTTP."""

from __future__ import annotations

import json

import pytest

from blendbus import paging
from blendbus import protocol as p
from blendbus.client import connect
from blendbus.testing import PythonPeer, call_envelope, serve_http

pytestmark = pytest.mark.anyio
MB = 1024 * 1024


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_64_mb_result_arrives_whole(blendbus_server, mode):
    size = 64 * MB - 1024  # the cap is on the JSON-encoded result: a string adds its two quotes
    blendbus_server.hub.limits.inline_result_max_bytes = None  # --inline-result-max-bytes 0: whole results
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url, mode=mode)):
            async with connect(url, mode=mode) as client:
                env = await call_envelope(client, "blender_test_size", {"nbytes": size, "timeout_s": 120})
                assert env["status"] == p.COMPLETED and len(env["result"]) == size
                over = await call_envelope(client, "blender_test_size", {"nbytes": 64 * MB + 1})
                assert over["status"] == p.FAILED and "above this peer's cap" in over["error"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_large_results_come_in_pages_that_fit_a_default_client(blendbus_server, mode):
    """A client with the SDK's defaults (1 MiB SSE events) gets every answer: the first page inline,
    the rest through blender_get_job(offset), reassembled to the exact result text."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    text = ("line é€ 😀 \"quoted\"\t\n" * 200_000)[:3_000_000]  # multibyte characters and escapes
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)), Client(streamable_http_client(url), mode=mode) as client:
            env = await call_envelope(client, "blender_test_echo", {"value": {"text": text[:2000]}})
            assert env["status"] == p.COMPLETED and "truncated" not in env  # small results are untouched
            script = f"import sys\nsys.stdout.write({text!r})"
            first = await call_envelope(client, "blender_execute_code", {"code": script, "timeout_s": 60})
            assert first["status"] == p.COMPLETED and first["truncated"] is True
            assert first["result_bytes"] == len(text.encode()) and "blender_get_job" in first["more"]
            pieces, offset = [first["result"]], first["next_offset"]
            while offset is not None:
                page = await call_envelope(client, "blender_get_job", {"job_id": first["job_id"], "offset": offset})
                assert page["offset"] == offset and len(json.dumps(page)) < 600_000
                pieces.append(page["result"])
                offset = page["next_offset"]
            assert "".join(pieces) == text and len(pieces) > 10
            structured = await call_envelope(client, "blender_test_echo", {"value": {"text": text}})
            whole = json.dumps({"echo": {"text": text}}, separators=(",", ":"))
            assert structured["truncated"] and whole.startswith(structured["result"])  # a page of the JSON text


async def test_a_client_may_ask_for_larger_pages_up_to_the_cap(blendbus_server):
    """`length` up to paging.MAX_PAGE_BYTES: fewer, larger pages, whose answer stays inside the TypeScript
    SDK's 10 MiB stdio line even for text that JSON escapes twice over (quotes and backslashes, then the
    text block's escaping of them). A larger `length` is refused, naming the most."""
    import httpx2

    from blendbus.testing.raw import ModernClient

    pairs = 5 * 1024 * 1024 // 2
    text = '\\"' * pairs  # 5 MiB of what escapes the most
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)), httpx2.AsyncClient(timeout=60) as http:
            client = ModernClient(http, url, None)
            first = await client.call("blender_execute_code", {"code": f"import sys\nsys.stdout.write('\\\\\"' * {pairs})"})
            env = first["structuredContent"]
            assert env.get("truncated"), env
            assert env["next_offset"] < 300_000
            pieces, offset, largest = [env["result"]], env["next_offset"], 0
            while offset is not None:
                answer = await client.call("blender_get_job", {"job_id": env["job_id"], "offset": offset,
                                                               "length": paging.MAX_PAGE_BYTES})
                page = answer["structuredContent"]
                assert len(json.dumps(page["result"])) <= paging.MAX_PAGE_BYTES
                largest = max(largest, len(json.dumps(answer)))
                pieces.append(page["result"])
                offset = page["next_offset"]
            assert "".join(pieces) == text and len(pieces) == 6  # the first page, then five of about 1 MiB
            assert 3 * 1024 * 1024 < largest < 10 * 1024 * 1024
            refused = await client.call("blender_get_job", {"job_id": env["job_id"], "offset": 0,
                                                             "length": paging.MAX_PAGE_BYTES + 1})
            assert refused["structuredContent"]["status"] == p.INVALID
            assert str(paging.MAX_PAGE_BYTES) in refused["structuredContent"]["error"]


@pytest.mark.parametrize("cap", [None, 4096])
async def test_a_large_result_is_repeated_as_text_unless_the_server_is_told_otherwise(blendbus_server, cap):
    blendbus_server.hub.limits.text_result_max_bytes = cap
    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)), connect(url) as client:
            for size, repeated in ((100, True), (5000, cap is None)):
                result = await client.call_tool("blender_test_size", {"nbytes": size})
                assert len(result.structured_content["result"]) == size  # always whole in structuredContent
                text = json.loads(result.content[0].text)
                assert text["status"] == p.COMPLETED and text["job_id"] == result.structured_content["job_id"]
                if repeated:
                    assert text == result.structured_content
                else:
                    assert text["result"] == "(over 4096 bytes: only in structuredContent)"


async def test_a_page_reads_only_its_bytes_however_large_the_result(blendbus_server, monkeypatch):
    """Paging costs the same at any result size, counted rather than timed: a page at a large offset of a
    24 MB result reads no more bytes from the store than a page holds, and never the whole result."""
    jobs = blendbus_server.hub.jobs
    read, whole = [], []
    read_result, get = jobs.read_result, jobs.get

    async def counted_read(user_id, job_id, offset, length):
        stored = await read_result(user_id, job_id, offset, length)
        read.append(len(stored[0]) if stored else 0)
        return stored

    async def counted_get(user_id, job_id, *, result=True):
        job = await get(user_id, job_id, result=result)
        if result and job is not None and job.result_data is not None:
            whole.append(len(job.result_data))
        return job

    async with serve_http(blendbus_server) as url:
        async with PythonPeer(lambda: connect(url)), connect(url) as client:
            first = await call_envelope(client, "blender_test_size", {"nbytes": 24 * MB, "timeout_s": 120})
            assert first["truncated"] and first["result_bytes"] == 24 * MB
            monkeypatch.setattr(jobs, "read_result", counted_read)
            monkeypatch.setattr(jobs, "get", counted_get)
            for offset in (20 * MB, 12 * MB + 3, 256 * 1024):
                page = await call_envelope(client, "blender_get_job", {"job_id": first["job_id"], "offset": offset})
                assert page["offset"] == offset and page["result"] == "x" * (page["next_offset"] - offset)
    budget = blendbus_server.hub.limits.inline_result_max_bytes
    assert len(read) == 3 and all(n <= budget + 4 for n in read), read  # a page's bytes, and a character's slack
    assert whole == []  # the whole result was never read to serve a page
