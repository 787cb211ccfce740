"""Rodin status through the bus; generation and import arrive with their handlers."""

from __future__ import annotations

import pytest

from blendbus.testing import call_envelope

pytestmark = pytest.mark.anyio


async def test_status_reports_mode_and_key_without_leaking_it(blendbus_server, blendbus_peer_factory, blendbus_client):
    await blendbus_peer_factory(settings={"rodin.enabled": True, "rodin.mode": "FAL_AI", "rodin.api_key": "secret-k"})
    env = await call_envelope(blendbus_client, "blender_get_hyper3d_status")
    assert env["result"] == {"enabled": True, "mode": "FAL_AI", "key_set": True}
    assert "secret-k" not in str(env)


async def test_wrong_input_is_refused_before_dispatch(blendbus_server, blendbus_client):
    env = await call_envelope(blendbus_client, "blender_generate_hyper3d_model_via_text",
                              {"text_prompt": "a chair", "bbox_condition": [1, 2]})
    assert env["status"] == "invalid" and "bbox_condition" in env["error"]
