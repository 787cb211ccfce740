"""OAuth sign-in against a real OpenID provider (oidc-provider, tests/openid.py): the resource metadata
and challenges, tokens it mints reaching their user's bus, each forged or misdirected token refused
with the status and error RFC 6750 gives, opaque tokens by introspection, key rotation, and the
official TypeScript client finding its way from the 401 to a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx2
import pytest
from cryptography.hazmat.primitives import serialization

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.auth import Refusal
from blendbus.oauth.access import AccessTokens
from blendbus.oauth.issuer import Issuer
from blendbus.testing import PythonPeer, call_envelope, serve_http
from blendbus.testing.raw import ModernClient
from tests.nodeclients import NODE_DIR
from tests.openid import NODE22, SECRET, SigningKey, client, openid_provider

pytestmark = pytest.mark.anyio
CLIENTS = [client("alice-app"), client("bob-app"), client("opaque-app"), client("blendbus-server")]
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


async def _post(url: str, token: str | None) -> httpx2.Response:
    headers = {"accept": "application/json, text/event-stream", **({"authorization": f"Bearer {token}"} if token else {})}
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(url, json=INITIALIZE, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_resource_metadata_and_the_401_point_to_the_issuer(blendbus_server):
    async with openid_provider(CLIENTS) as provider, serve_http(blendbus_server, oauth=provider.issuer) as url:
        origin = url.removesuffix("/mcp")
        async with httpx2.AsyncClient(timeout=30) as http:
            documents = [(await http.get(origin + path)).json() for path in
                         ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource")]
        for doc in documents:
            assert doc["resource"] == url and doc["authorization_servers"] == [provider.issuer]
            assert doc["scopes_supported"] == list(p.SCOPE_ROLES) and doc["bearer_methods_supported"] == ["header"]
        bare = await _post(url, None)
        assert bare.status_code == 401
        assert bare.headers["www-authenticate"] == (
            f'Bearer resource_metadata="{origin}/.well-known/oauth-protected-resource/mcp", scope="blendbus"')


async def test_tokens_the_provider_mints_reach_their_users_bus(blendbus_server):
    async with openid_provider(CLIENTS) as provider, \
            serve_http(blendbus_server, tokens={"peer-tok": {"user": "alice-app", "role": "peer"}},
                       oauth=provider.issuer) as url:
        alice, bob = await provider.token("alice-app", url), await provider.token("bob-app", url)
        assert json.loads(base64.urlsafe_b64decode(alice.split(".")[1] + "==")).get("aud") == url
        # A static peer token and an OAuth sign-in of the same user share one bus.
        async with PythonPeer(lambda: connect(url, "peer-tok"), uuid="alice-blender"), \
                connect(url, alice) as llm, connect(url, bob) as other:
            env = await call_envelope(llm, "blender_test_echo", {"value": "signed in"})
            assert env["status"] == p.COMPLETED and env["result"] == {"echo": "signed in"}
            assert [c["client_uuid"] for c in (await call_envelope(llm, "blender_list_clients"))["clients"]] == ["alice-blender"]
            assert (await call_envelope(other, "blender_list_clients"))["clients"] == []
            assert (await call_envelope(other, "blender_get_job", {"job_id": env["job_id"]}))["status"] == p.FAILED
            assert (await call_envelope(other, "blender_test_echo", {"value": 1}))["status"] == p.NO_CLIENT
            # The LLM scope does not make a peer: the peer tools stay hidden from it.
            assert p.REGISTER not in {t.name for t in (await llm.list_tools()).tools}
            async with httpx2.AsyncClient(timeout=30) as http:  # nor are Alice's tasks Bob's
                task = await ModernClient(http, url, alice).call("blender_test_sleep", {"seconds": 1.5})
                snoop = (await ModernClient(http, url, bob)("tasks/get", {"taskId": task["taskId"]}))["error"]
                assert snoop["code"] == -32602 and "not yours" in snoop["message"]


async def test_forged_and_misdirected_tokens_are_refused(blendbus_server):
    async with openid_provider(CLIENTS) as provider, \
            serve_http(blendbus_server, oauth=provider.issuer, oauth_client=("blendbus-server", SECRET)) as url:
        now = int(time.time())
        real = await provider.token("bob-app", url)
        head, body, signature = real.split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=="))
        public_pem = provider.keys[0].private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        confused_head = _b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": provider.keys[0].kid}).encode())
        confused_body = _b64(json.dumps({**claims, "sub": "alice-app"}).encode())
        confused_sig = _b64(hmac.new(public_pem, f"{confused_head}.{confused_body}".encode(), hashlib.sha256).digest())
        none_head = _b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
        cases = {
            "wrong audience": await provider.token("bob-app", "http://127.0.0.1:9/mcp"),
            "expired": provider.forge({"aud": url, "iat": now - 7200, "exp": now - 3600}),
            "not yet valid": provider.forge({"aud": url, "nbf": now + 3600}),
            "wrong issuer": provider.forge({"aud": url, "iss": "http://127.0.0.1:9"}),
            "alg none": f"{none_head}.{_b64(json.dumps({**claims, 'sub': 'alice-app'}).encode())}.",
            "RS-to-HS key confusion": f"{confused_head}.{confused_body}.{confused_sig}",
            "tampered signature": f"{head}.{_b64(json.dumps({**claims, 'sub': 'alice-app'}).encode())}.{signature}",
            "unknown key": provider.forge({"aud": url}, kid="not-a-key-of-the-issuer"),
            "no user claim": provider.forge({"aud": url, "sub": None}),
            "inactive opaque token": "an-opaque-token-the-issuer-never-issued",
            "missing scope": provider.forge({"aud": url, "scope": "openid profile"}),
        }
        seen = {}
        for case, token in cases.items():
            answer = await _post(url, token)
            challenge = answer.headers.get("www-authenticate", "")
            error = challenge.partition('error="')[2].partition('"')[0]
            assert "resource_metadata=" in challenge, (case, challenge)
            seen[case] = (answer.status_code, error, 'scope="blendbus"' in challenge)
        expected = {case: (401, "invalid_token", False) for case in cases}
        expected["missing scope"] = (403, "insufficient_scope", True)
        assert seen == expected
        assert (await _post(url, real)).status_code == 200


async def test_opaque_tokens_are_introspected(blendbus_server):
    async with openid_provider(CLIENTS) as provider, \
            serve_http(blendbus_server, oauth=provider.issuer, oauth_client=("blendbus-server", SECRET)) as url:
        token = await provider.token("opaque-app", url)
        assert token.count(".") != 2  # not a JWT: only the issuer can say what it is
        async with connect(url, token) as llm:
            assert (await call_envelope(llm, "blender_list_clients"))["clients"] == []
        elsewhere = await provider.token("opaque-app", "http://127.0.0.1:9/mcp")
        assert (await _post(url, elsewhere)).status_code == 401


async def test_a_rotated_key_is_fetched_when_a_token_names_it():
    first, second = SigningKey.new("old"), SigningKey.new("new")
    async with openid_provider(CLIENTS, keys=[first]) as provider:
        resource, port = "http://127.0.0.1:9/mcp", int(provider.issuer.rpartition(":")[2])
        tokens = AccessTokens(Issuer(provider.issuer, refetch_s=0), (resource,))
        assert (await tokens.grant(await provider.token("alice-app", resource))).user_id == "alice-app"
    async with openid_provider(CLIENTS, keys=[second, first], port=port) as rotated:
        minted = await rotated.token("alice-app", resource)
        assert json.loads(base64.urlsafe_b64decode(minted.split(".")[0] + "=="))["kid"] == "new"
        assert (await tokens.grant(minted)).user_id == "alice-app"
        patient = AccessTokens(Issuer(provider.issuer), (resource,))
        await patient.grant(minted)
        with pytest.raises(Refusal, match="no signing key 'forged'"):  # an unknown kid refetches at most every REFETCH_S
            await patient.grant(rotated.forge({"aud": resource}, kid="forged"))


async def test_the_typescript_client_signs_in_from_the_401(blendbus_server):
    import asyncio

    async with openid_provider(CLIENTS) as provider, serve_http(blendbus_server, oauth=provider.issuer) as url:
        options = {"clientId": "alice-app", "clientSecret": SECRET, "issuer": provider.issuer, "scope": "blendbus"}
        proc = await asyncio.create_subprocess_exec(
            str(NODE22), str(NODE_DIR / "oauth.mjs"), "client-credentials", url, json.dumps(options),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()[-4000:]
        seen = json.loads(out.decode().splitlines()[-1])
        assert seen["tools"] > 10 and seen["clients"] == [] and seen["isError"] is False and seen["scope"] == "blendbus"
        requests = seen["requests"]
        assert requests[0] == "POST /mcp 401"
        assert "GET /.well-known/oauth-protected-resource/mcp 200" in requests
        assert "POST /token 200" in requests


async def test_the_typescript_client_signs_a_person_in_at_the_provider(blendbus_server):
    """A host signs Alice in at the OpenID provider (its own login and consent pages, in Chromium);
    her Blender, connected with a static peer token, is on the bus she reaches."""
    import asyncio

    from blendbus.testing.browser import browser_page

    async with openid_provider(CLIENTS) as provider, \
            serve_http(blendbus_server, tokens={"peer-tok": {"user": "alice", "role": "peer"}},
                       oauth=provider.issuer) as url, \
            PythonPeer(lambda: connect(url, "peer-tok"), uuid="alice-blender"), browser_page() as page:
        proc = await asyncio.create_subprocess_exec(
            str(NODE22), str(NODE_DIR / "oauth.mjs"), "authorization-code", url, json.dumps({}),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        authorize = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))["authorize"]
        assert authorize.startswith(provider.issuer)
        await page.goto(authorize)
        await page.fill("input[name=login]", "alice")
        await page.fill("input[name=password]", "any")
        await page.click("button[type=submit]")
        await page.click("button[type=submit]")  # the provider's consent page
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()[-4000:]
        seen = json.loads(out.decode().splitlines()[-1])
        assert seen["registered"] and seen["tools"] > 10
        assert [c["client_uuid"] for c in seen["clients"]] == ["alice-blender"]
