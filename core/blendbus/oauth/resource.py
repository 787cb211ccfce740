"""blendbus as an OAuth protected resource (RFC 9728, the MCP authorization spec): its canonical URI,
the metadata that tells an MCP host where to sign in, and the `WWW-Authenticate` challenges that
point there."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_resource_metadata_url, cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.routing import Route

from ..addresses import is_loopback
from ..auth import Identity, Refusal, TokenTable
from ..backends.base import Records
from ..limits import Limits
from ..protocol import BASE_SCOPE, SCOPE_ROLES
from .access import AccessTokens
from .issuer import Issuer
from .server import BuiltinAuthorizationServer, Lifetimes

MCP_PATH = "/mcp"
BUILTIN = "builtin"
"""`--oauth builtin`: this server is its own authorization server."""
WELL_KNOWN = "/.well-known/oauth-protected-resource"


def check_public_url(url: str) -> str:
    """`url` without a trailing slash (or `/mcp`: the endpoint's URL names the server too), if it may be
    this server's public URL: https, or http on loopback."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("http", "https") or parts.query or parts.fragment:
        raise ValueError(f"--public-url {url!r}: give the URL clients reach this server at, such as"
                         " https://bus.example")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(f"--public-url {url!r}: OAuth needs https:// (plain http only on a loopback host)")
    return url.rstrip("/").removesuffix(MCP_PATH)


@dataclass(frozen=True)
class ProtectedResource:
    """What OAuth needs of this server: where it is (`public_url`, as clients reach it, behind any
    proxy), whom it trusts, and how it checks tokens."""

    public_url: str
    tokens: AccessTokens
    authorization: BuiltinAuthorizationServer | None = None
    """This server as its own authorization server (`--oauth builtin`), or None: another issuer."""

    @property
    def resource(self) -> str:
        """The canonical resource URI (RFC 8707): the MCP endpoint. Tokens must be minted for it."""
        return self.public_url + MCP_PATH

    @property
    def metadata_url(self) -> str:
        return str(build_resource_metadata_url(AnyHttpUrl(self.resource)))

    def routes(self) -> list[Route]:
        """The metadata document, at its path form for /mcp (RFC 9728 §3.1) and at the root, for hosts
        that look there."""
        metadata = ProtectedResourceMetadata(
            resource=self.resource, authorization_servers=[self.tokens.issuer.url],  # as strings: kept exactly
            scopes_supported=list(SCOPE_ROLES), resource_name="blendbus")
        handler = cors_middleware(ProtectedResourceMetadataHandler(metadata).handle, ["GET", "OPTIONS"])
        own = self.authorization.routes() if self.authorization is not None else []
        return [*(Route(path, endpoint=handler, methods=["GET", "OPTIONS"]) for path in (WELL_KNOWN + MCP_PATH, WELL_KNOWN)),
                *own]

    async def grant(self, token: str) -> Identity:
        return await self.tokens.grant(token)

    def challenge(self, refusal: Refusal | None) -> str:
        """The `WWW-Authenticate` value for a request without a token (None) or with a refused one."""
        parts = [f'resource_metadata="{self.metadata_url}"']
        if refusal is None:
            parts.append(f'scope="{BASE_SCOPE}"')
        else:
            parts = [f'error="{refusal.error}"', f'error_description="{quoted(refusal.description)}"', *parts]
            if refusal.scope:
                parts.append(f'scope="{refusal.scope}"')
        return "Bearer " + ", ".join(parts)


def quoted(text: str) -> str:
    """`text` as an RFC 7230 quoted-string's content: printable ASCII, no quote or backslash."""
    return "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "'" if c == '"' else " " for c in text)[:300]


def protected_resource(issuer: str, public_url: str, *, user_claim: str = "sub", client_id: str | None = None,
                       client_secret: str | None = None, audiences: list[str] | None = None) -> ProtectedResource:
    """This server, protected by tokens of `issuer` minted for it at `public_url` (or naming one of
    `audiences`, the issuer's own names for it). The issuer is not contacted until the first token."""
    base = check_public_url(public_url)
    accepted = (base + MCP_PATH, base, base + "/", *(audiences or ()))
    return ProtectedResource(base, AccessTokens(Issuer(issuer), accepted, user_claim=user_claim,
                                                client_id=client_id, client_secret=client_secret))


def builtin_resource(public_url: str, records: Records, people: TokenTable, limits: Limits) -> ProtectedResource:
    """This server, signing people in itself (`--oauth builtin`): they prove who they are with a token of
    `people`, and the access tokens it mints are checked against its own key."""
    base = check_public_url(public_url)
    local = is_loopback(urlsplit(base).hostname or "")
    lifetimes = Lifetimes(limits.oauth_access_token_s, limits.oauth_refresh_token_s, limits.oauth_requests_per_minute)
    authorization = BuiltinAuthorizationServer(base, base + MCP_PATH, records, people, lifetimes, local_documents=local)
    tokens = AccessTokens(Issuer(base, jwks=authorization.public_keys), (base + MCP_PATH,), skew_s=0)
    return ProtectedResource(base, tokens, authorization)
