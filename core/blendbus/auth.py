"""Bearer tokens: who a request is, and what role it may play.

The tokens file is a JSON object. A key is either a raw token or ``sha256:<hex digest>`` of one
(so the file need not hold secrets); a value is a user id (the llm and peer roles) or
``{"user": ..., "role": "llm" | "peer" | "operator", "tools": PROFILE}``, where the optional tools
profile (toolsets.py) narrows what the token's LLM may list and call. Every lookup hashes the presented token and compares it
with every entry in constant time, so timing reveals neither which entry nor how much matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Receive, Scope, Send

from .protocol import OPERATOR, ROLES, TOKEN_ROLES

__all__ = ["OPERATOR", "ROLES", "TOKEN_ROLES", "BearerAuth", "Identity", "TokenTable", "add_token", "hash_token",
           "new_token"]

USER_SCOPE_KEY = "blendbus.user"
ROLES_SCOPE_KEY = "blendbus.roles"
CREDENTIAL_SCOPE_KEY = "blendbus.credential"
"""The sha256 of the bearer token a request presented ("local" without tokens): binds peer uuids and
MCP sessions to the token that made them."""
TOOLS_SCOPE_KEY = "blendbus.tools"
"""The tools profile the token carries, if any (toolsets.py)."""


@dataclass(frozen=True)
class Identity:
    user_id: str
    roles: frozenset[str] = frozenset(ROLES)
    credential: str = "local"
    tools: str | None = None
    """The token's tools profile; None: the server's."""


LOCAL = Identity("local")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenTable:
    def __init__(self, entries: dict[str, Any]) -> None:
        self._entries: list[tuple[bytes, Identity]] = []
        for key, value in entries.items():
            digest = key[len("sha256:"):] if key.startswith("sha256:") else hash_token(key)
            if isinstance(value, str):
                ident = Identity(value)
            elif isinstance(value, dict) and isinstance(value.get("user"), str):
                role = value.get("role")  # None: both roles
                if role is not None and role not in TOKEN_ROLES:
                    raise ValueError(f"tokens file: role must be one of {TOKEN_ROLES}, not {role!r}")
                tools = value.get("tools")
                if tools is not None and not (isinstance(tools, str) and tools.strip()):
                    raise ValueError(f"tokens file: tools must be a profile string such as \"core\", not {tools!r}")
                ident = Identity(value["user"], frozenset([role]) if role else frozenset(ROLES), tools=tools)
            else:
                raise ValueError("tokens file: each value is a user id or {\"user\": ..., \"role\": ..., \"tools\": ...}")
            self._entries.append((bytes.fromhex(digest), ident))

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read tokens file {path}: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"tokens file {path} must hold a JSON object {{token: user}}")
        return cls(data)

    def profiles(self) -> set[str]:
        """Every tools profile a token carries: the server checks each against its plugins at start."""
        return {ident.tools for _, ident in self._entries if ident.tools is not None}

    def add(self, token: str, ident: Identity) -> None:
        self._entries.append((bytes.fromhex(hash_token(token)), ident))

    def lookup(self, token: str) -> Identity | None:
        presented = bytes.fromhex(hash_token(token))
        found = None
        for digest, ident in self._entries:  # no early exit: constant time in the table size
            if hmac.compare_digest(digest, presented):
                found = ident
        return None if found is None else replace(found, credential=presented.hex())


def new_token() -> str:
    return "bb_" + secrets.token_urlsafe(32)


def add_token(path: Path, user: str, role: str | None = None, tools: str | None = None) -> str:
    """Create a token for `user` (with a role and a tools profile, if given), store only its sha256 in
    the tokens file (mode 0600), return it."""
    if role is not None and role not in TOKEN_ROLES:
        raise ValueError(f"role must be one of {TOKEN_ROLES}")
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text() or "{}")
        TokenTable(data)  # refuse to extend a file that does not load
    token = new_token()
    entry = {"user": user, **({"role": role} if role else {}), **({"tools": tools} if tools else {})}
    data[f"sha256:{hash_token(token)}"] = entry if len(entry) > 1 else user
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)
    tmp.replace(path)
    return token


def _modern(scope: Scope) -> bool:
    """Whether a request speaks a stateless protocol revision (2026-07-28 or later)."""
    for name, value in scope.get("headers", []):
        if name == b"mcp-protocol-version":
            return value.decode("latin-1") in MODERN_PROTOCOL_VERSIONS
    return False


@dataclass(frozen=True)
class Refusal(Exception):
    """Why a token is not accepted, as RFC 6750 §3 says it: 401 `invalid_token`, or 403
    `insufficient_scope` naming the scope that is needed."""

    description: str
    status: int = 401
    error: str = "invalid_token"
    scope: str | None = None


class OAuthGate(Protocol):
    """What the middleware needs of OAuth (oauth/resource.py `ProtectedResource`): who a token is, or
    the refusal; and the challenge that tells a client where to sign in."""

    async def grant(self, token: str) -> Identity: ...

    def challenge(self, refusal: Refusal | None) -> str: ...


class BearerAuth:
    """ASGI middleware: attaches the caller's identity to the scope, or answers 401 (403 for an OAuth
    token without a scope of this server's). A token is looked up in the tokens file first, then, with
    `oauth`, checked as an OAuth access token."""

    def __init__(self, app: ASGIApp, tokens: TokenTable | None, paths: tuple[str, ...] = ("/mcp",),
                 oauth: OAuthGate | None = None, open_paths: tuple[str, ...] = ()) -> None:
        """`paths`: the prefixes that need a token; `open_paths`: exact paths under them that do not (the
        Server Card, public by design)."""
        self.app, self.tokens, self.paths, self.oauth, self.open_paths = app, tokens, paths, oauth, open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.paths) and scope["path"] not in self.open_paths:
            ident = LOCAL if self.tokens is None and self.oauth is None else await self._identify(scope)
            if not isinstance(ident, Identity):
                await self._refuse(send, ident)
                return
            scope[USER_SCOPE_KEY] = ident.user_id
            scope[ROLES_SCOPE_KEY] = ident.roles
            scope[CREDENTIAL_SCOPE_KEY] = ident.credential
            if ident.tools is not None:
                scope[TOOLS_SCOPE_KEY] = ident.tools
            if not _modern(scope):
                # The SDK binds each session-era MCP session to this principal: another token gets 404.
                # (2026-07-28-era requests have no session; carrying a user costs them time in the SDK.)
                scope["user"] = AuthenticatedUser(AccessToken(token="", client_id=ident.user_id,
                                                              scopes=sorted(ident.roles), subject=ident.credential))
        await self.app(scope, receive, send)

    async def _identify(self, scope: Scope) -> Identity | Refusal | None:
        """Who presents the request's bearer token; None without a token (or with an unknown one and no
        OAuth); the refusal when OAuth refuses it."""
        token = _bearer(scope)
        if token is None:
            return None
        ident = self.tokens.lookup(token) if self.tokens is not None else None
        if ident is not None or self.oauth is None:
            return ident
        try:
            return await self.oauth.grant(token)
        except Refusal as refusal:
            return refusal

    async def _refuse(self, send: Send, refusal: Refusal | None) -> None:
        error = refusal.error if refusal is not None else "unauthorized"
        body = {"error": error, **({"error_description": refusal.description} if refusal is not None else {})}
        challenge = self.oauth.challenge(refusal) if self.oauth is not None else "Bearer"
        await send({"type": "http.response.start", "status": refusal.status if refusal is not None else 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", challenge.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None
