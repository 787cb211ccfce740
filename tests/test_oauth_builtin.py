"""The built-in authorization server (`--oauth builtin`): a whole sign-in by hand over HTTP (metadata,
registration, PKCE, the consent page, code, tokens, refresh rotation, revocation), each refusal the
flow must make, a client identified by its metadata document, a sign-in that crosses replicas on
Redis, and the official TypeScript SDK client signing in with the consent page driven in Chromium."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from blendbus import protocol as p
from blendbus.client import connect
from blendbus.dispatch import Limits
from blendbus.testing import PythonPeer, call_envelope, make_server, serve_http
from blendbus.testing.browser import browser_page
from blendbus.testing.fakehttp import Response, fake_api
from tests.accessibility import violations
from tests.nodeclients import NODE_DIR
from tests.openid import NODE22

pytestmark = pytest.mark.anyio
PEOPLE = {"alice-personal": "alice", "bob-personal": "bob", "peer-only": {"user": "carol", "role": "peer"}}
CALLBACK = "http://127.0.0.1:1234/callback"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class SignIn:
    """One person's sign-in through the built-in server, step by step, as a browser and an app make it."""

    def __init__(self, http: httpx2.AsyncClient, origin: str, client_id: str, redirect_uri: str = CALLBACK) -> None:
        self.http, self.origin, self.client_id, self.redirect_uri = http, origin, client_id, redirect_uri
        self.verifier, self.challenge = _pkce()
        self.state = secrets.token_urlsafe(8)

    async def authorize(self, **extra: str) -> httpx2.Response:
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                 "code_challenge": self.challenge, "code_challenge_method": "S256", "state": self.state,
                 "scope": "blendbus", "resource": f"{self.origin}/mcp", **extra}
        return await self.http.get(f"{self.origin}/authorize?{urlencode(query)}")

    async def consent_page(self) -> tuple[httpx2.Response, dict[str, str]]:
        """The consent page the authorization redirects to, and its form's hidden fields."""
        answer = await self.authorize()
        assert answer.status_code == 302, answer.text
        page = await self.http.get(answer.headers["location"])
        hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
        return page, hidden

    async def consent(self, token: str, decision: str = "allow", **form: str) -> httpx2.Response:
        _, hidden = await self.consent_page()
        return await self.http.post(f"{self.origin}/oauth/consent",
                                    data={**hidden, "token": token, "decision": decision, **form})

    async def code(self, token: str) -> str:
        answer = await self.consent(token)
        assert answer.status_code == 303, answer.text
        back = urlsplit(answer.headers["location"])
        query = {k: v[0] for k, v in parse_qs(back.query).items()}
        assert query["state"] == self.state and query["iss"] == self.origin
        return query["code"]

    async def redeem(self, code: str, **extra: str) -> httpx2.Response:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "client_id": self.client_id, "code_verifier": self.verifier, "resource": f"{self.origin}/mcp", **extra}
        return await self.http.post(f"{self.origin}/token", data={k: v for k, v in data.items() if v is not None})

    async def refresh(self, refresh_token: str) -> httpx2.Response:
        return await self.http.post(f"{self.origin}/token", data={
            "grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": self.client_id})


async def _register(http: httpx2.AsyncClient, origin: str, redirect_uri: str = CALLBACK) -> str:
    answer = await http.post(f"{origin}/register", json={
        "client_name": "Test Host", "redirect_uris": [redirect_uri], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["client_id"])


async def test_a_whole_sign_in_by_hand(blendbus_server):
    async with serve_http(blendbus_server, tokens=PEOPLE, oauth="builtin") as url, \
            httpx2.AsyncClient(timeout=30) as http:
        origin = url.removesuffix("/mcp")
        metadata = (await http.get(f"{origin}/.well-known/oauth-authorization-server")).json()
        assert metadata["issuer"] == origin and metadata["code_challenge_methods_supported"] == ["S256"]
        assert metadata["client_id_metadata_document_supported"] is True and metadata["registration_endpoint"]
        resource = (await http.get(f"{origin}/.well-known/oauth-protected-resource/mcp")).json()
        assert resource["authorization_servers"] == [origin]

        sign_in = SignIn(http, origin, await _register(http, origin))
        page, hidden = await sign_in.consent_page()
        assert page.status_code == 200 and 'name="token"' in page.text
        assert '<button type="submit" name="decision" value="allow">' in page.text and "Test Host" in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and "samesite=strict" in page.headers["set-cookie"].lower()

        tokens = (await sign_in.redeem(await sign_in.code("alice-personal"))).json()
        assert tokens["token_type"] == "Bearer" and tokens["scope"] == "blendbus" and tokens["refresh_token"]
        async with PythonPeer(lambda: connect(url, "alice-personal"), uuid="alice-blender"), \
                connect(url, tokens["access_token"]) as llm:
            env = await call_envelope(llm, "blender_test_echo", {"value": "signed in"})
            assert env["status"] == p.COMPLETED and env["target_uuid"] == "alice-blender"

        renewed = (await sign_in.refresh(tokens["refresh_token"])).json()
        assert renewed["refresh_token"] != tokens["refresh_token"] and renewed["access_token"]
        replayed = await sign_in.refresh(tokens["refresh_token"])
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
        revoked = await http.post(f"{origin}/revoke", data={"token": renewed["refresh_token"], "client_id": sign_in.client_id})
        assert revoked.status_code == 200
        assert (await sign_in.refresh(renewed["refresh_token"])).status_code == 400


async def test_each_misstep_is_refused(blendbus_server):
    async with serve_http(blendbus_server, tokens=PEOPLE, oauth="builtin") as url, \
            httpx2.AsyncClient(timeout=30) as http:
        origin = url.removesuffix("/mcp")
        client_id = await _register(http, origin)
        sign_in = SignIn(http, origin, client_id)

        code = await sign_in.code("alice-personal")
        no_verifier = await sign_in.redeem(code, code_verifier=None)  # type: ignore[arg-type]
        assert no_verifier.status_code == 400 and no_verifier.json()["error"] == "invalid_request"
        wrong_verifier = await sign_in.redeem(code, code_verifier=secrets.token_urlsafe(48))
        assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
        elsewhere = await sign_in.redeem(code, redirect_uri="http://127.0.0.1:1234/other")
        assert elsewhere.status_code == 400
        assert (await sign_in.redeem(code)).status_code == 200
        replay = await sign_in.redeem(code)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"

        foreign = await SignIn(http, origin, client_id, "https://attacker.example/callback").authorize()
        assert foreign.status_code == 400 and "attacker" not in foreign.headers.get("location", "")
        any_port = await SignIn(http, origin, client_id, "http://127.0.0.1:5555/callback").authorize()
        assert any_port.status_code == 302  # a loopback redirect may use any port (RFC 8252)
        other_path = await SignIn(http, origin, client_id, "http://127.0.0.1:5555/elsewhere").authorize()
        assert other_path.status_code == 400
        plain = await sign_in.authorize(code_challenge_method="plain")
        assert plain.status_code in (302, 400) and "code=" not in plain.headers.get("location", "")
        other_resource = await sign_in.authorize(resource="https://other.example/mcp")
        assert "error=invalid_target" in other_resource.headers.get("location", "")

        page, hidden = await sign_in.consent_page()
        async with httpx2.AsyncClient(timeout=30) as elsewhere_browser:  # another browser: no cookie
            forged = await elsewhere_browser.post(f"{origin}/oauth/consent",
                                                  data={**hidden, "token": "alice-personal", "decision": "allow"})
        assert forged.status_code == 403 and "location" not in forged.headers
        no_csrf = await http.post(f"{origin}/oauth/consent", data={"request": hidden["request"],
                                                                    "token": "alice-personal", "decision": "allow"})
        assert no_csrf.status_code == 403
        wrong_person = await sign_in.consent("not-a-token")
        assert wrong_person.status_code == 401 and 'role="alert"' in wrong_person.text
        not_an_llm = await sign_in.consent("peer-only")
        assert not_an_llm.status_code == 403
        denied = await sign_in.consent("alice-personal", decision="deny")
        assert denied.status_code == 303 and "error=access_denied" in denied.headers["location"]

        alice = (await sign_in.redeem(await sign_in.code("alice-personal"))).json()["access_token"]
        bob = (await sign_in.redeem(await sign_in.code("bob-personal"))).json()["access_token"]
        async with PythonPeer(lambda: connect(url, "alice-personal"), uuid="alice-blender"), \
                connect(url, alice) as mine, connect(url, bob) as theirs:
            env = await call_envelope(mine, "blender_test_echo", {"value": 1})
            assert env["status"] == p.COMPLETED
            assert (await call_envelope(theirs, "blender_list_clients"))["clients"] == []
            assert (await call_envelope(theirs, "blender_get_job", {"job_id": env["job_id"]}))["status"] == p.FAILED


async def test_a_client_named_by_its_metadata_document(blendbus_server):
    def document(request):
        here = f"http://{request.headers['Host']}/host/client.json"
        return Response(200, {"client_id": here, "client_name": "Document Host", "redirect_uris": [CALLBACK],
                              "token_endpoint_auth_method": "none"})

    def impostor(request):
        return Response(200, {"client_id": "https://someone-else.example/client.json", "redirect_uris": [CALLBACK]})

    with fake_api({("GET", "/host/client.json"): document, ("GET", "/host/impostor.json"): impostor}) as (base, _):
        async with serve_http(blendbus_server, tokens=PEOPLE, oauth="builtin") as url, \
                httpx2.AsyncClient(timeout=30) as http:
            origin = url.removesuffix("/mcp")
            sign_in = SignIn(http, origin, f"{base}/host/client.json")
            page, _ = await sign_in.consent_page()
            assert "Document Host" in page.text
            tokens = (await sign_in.redeem(await sign_in.code("alice-personal"))).json()
            async with connect(url, tokens["access_token"]) as llm:
                assert (await call_envelope(llm, "blender_list_clients"))["clients"] == []
            refused = await SignIn(http, origin, f"{base}/host/impostor.json").authorize()
            assert refused.status_code == 400


async def test_a_sign_in_crosses_replicas_on_redis(blendbus_redis):
    first, second = make_server(backend=blendbus_redis), make_server(backend=blendbus_redis)
    async with serve_http(first, tokens=PEOPLE, oauth="builtin") as one:
        public = one.removesuffix("/mcp")
        async with serve_http(second, tokens=PEOPLE, oauth="builtin", public_url=public) as two, \
                httpx2.AsyncClient(timeout=30) as http:
            other = two.removesuffix("/mcp")
            client_id = await _register(http, public)
            sign_in = SignIn(http, public, client_id)
            answer = await sign_in.authorize()
            consent = answer.headers["location"].replace(public, other)  # the browser lands on the other replica
            page = await http.get(consent)
            hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.text))
            decided = await http.post(f"{other}/oauth/consent", data={**hidden, "token": "alice-personal",
                                                                      "decision": "allow"})
            code = parse_qs(urlsplit(decided.headers["location"]).query)["code"][0]
            tokens = (await sign_in.redeem(code)).json()
            async with connect(two, tokens["access_token"]) as llm:  # minted by one replica, accepted by the other
                assert (await call_envelope(llm, "blender_list_clients"))["clients"] == []


async def test_the_typescript_client_signs_in_through_the_consent_page(tmp_path):
    limits = Limits(oauth_access_token_s=3)
    server = make_server(state_dir=tmp_path, limits=limits)
    async with serve_http(server, tokens=PEOPLE, oauth="builtin") as url, browser_page(bypass_csp=True) as page:
        proc = await asyncio.create_subprocess_exec(
            str(NODE22), str(NODE_DIR / "oauth.mjs"), "authorization-code", url, json.dumps({"waitForExpiry": 4}),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        line = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
        await page.goto(line["authorize"])
        assert await violations(page) == ""
        await page.focus("#token")  # by keyboard alone: type the token, Enter allows
        await page.keyboard.type("alice-personal")
        await page.keyboard.press("Enter")
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()[-4000:]
        seen = json.loads(out.decode().splitlines()[-1])
        assert seen["registered"] and seen["tools"] > 10 and seen["clients"] == []
        assert seen["after_expiry"] == [] and seen["tokens_saved"] >= 2  # the expired token was refreshed


async def test_the_open_endpoints_are_paced(tmp_path):
    """Registration, authorization and the token endpoint answer anyone: one address gets so many
    requests a minute, then 429 with the time to wait."""
    server = make_server(state_dir=tmp_path, limits=Limits(oauth_requests_per_minute=5))
    async with serve_http(server, tokens=PEOPLE, oauth="builtin") as url, httpx2.AsyncClient(timeout=30) as http:
        origin = url.removesuffix("/mcp")
        for _ in range(5):
            await _register(http, origin)
        refused = await http.post(f"{origin}/register", json={"redirect_uris": [CALLBACK]})
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"] == "slow_down"
        assert (await http.post(f"{origin}/token", data={"grant_type": "authorization_code"})).status_code == 429
        assert (await http.post(url, json={})).status_code == 401  # the MCP endpoint is not paced by this
