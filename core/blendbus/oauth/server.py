"""The built-in authorization server (`blendbus serve --oauth builtin`), for a studio without an
identity provider: this server signs people in itself, and they prove who they are with the
personal token `blendbus token new USER` gave them (consent.py).

It is the MCP SDK's authorization-server handlers (RFC 8414 metadata, `/authorize`, `/token` with
PKCE S256, `/register` for RFC 7591, `/revoke`) over this provider. Everything it remembers lives
in the backend's `Records` (backends/base.py): on Redis a sign-in begun on one replica completes on
another, and every replica signs with the one key the first of them made. A code and a refresh token
are each taken once (a replayed one is refused); each refresh rotates the refresh token. Access
tokens are JWTs that the resource side checks like any issuer's (access.py), against this key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.provider import (AccessToken, AuthorizationCode, AuthorizationParams, AuthorizeError,
                                      RefreshToken, TokenError, construct_redirect_uri)
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.routes import REVOCATION_PATH, build_metadata, cors_middleware, create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ..auth import Identity, TokenTable
from ..backends.base import Records
from ..protocol import BASE_SCOPE, SCOPE_ROLES
from .clients import Client, Clients
from .consent import CONSENT_PATH, consent_routes
from .throttle import Throttle

CODE_TTL_S = 300.0
CONSENT_TTL_S = 600.0
"""How long a person has to approve a sign-in on the consent page."""
PENDING, CODE, REFRESH, KEY = "consent", "code", "refresh", "key"


@dataclass(frozen=True)
class Lifetimes:
    """The built-in server's settings from `Limits`: how long its tokens last, how fast it answers one address."""

    access_s: float
    refresh_s: float
    requests_per_minute: int = 120


def _digest(secret: str) -> str:
    """Codes and refresh tokens are kept by their sha256: the records never hold a usable one."""
    return hashlib.sha256(secret.encode()).hexdigest()


class BuiltinAuthorizationServer:
    """The provider the SDK's handlers call, and the consent page's decisions."""

    def __init__(self, issuer: str, resource: str, records: Records, people: TokenTable, lifetimes: Lifetimes,
                 *, local_documents: bool) -> None:
        self.issuer, self.resource, self.records, self.people = issuer, resource, records, people
        self.lifetimes = lifetimes
        self.throttle = Throttle(lifetimes.requests_per_minute)
        self.clients = Clients(records, local_documents=local_documents)
        self._key: tuple[str, ec.EllipticCurvePrivateKey] | None = None

    # --- the signing key, made once per backend

    async def signing_key(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        if self._key is None:
            fresh = ec.generate_private_key(ec.SECP256R1())
            pem = fresh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
            held = await self.records.put_first(KEY, "signing", {"pem": pem, "kid": secrets.token_hex(8)})
            key = serialization.load_pem_private_key(held["pem"].encode(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            self._key = (str(held["kid"]), key)
        return self._key

    async def public_keys(self) -> list[dict[str, Any]]:
        """The JWKS the resource side verifies with."""
        kid, key = await self.signing_key()
        public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return [{**public, "kid": kid, "alg": "ES256", "use": "sig"}]

    # --- clients

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return await self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        await self.clients.register(client_info)

    # --- authorization: the person decides on the consent page

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and params.resource.rstrip("/") != self.resource:
            raise AuthorizeError("invalid_target", f"this server signs in for {self.resource} only")
        request = secrets.token_urlsafe(24)
        await self.records.put(PENDING, request, {
            "client_id": client.client_id, "client_name": client.client_name or client.client_id,
            "redirect_uri": str(params.redirect_uri), "explicit": params.redirect_uri_provided_explicitly,
            "state": params.state, "scopes": params.scopes or [BASE_SCOPE],
            "code_challenge": params.code_challenge, "csrf": secrets.token_urlsafe(24)}, ttl_s=CONSENT_TTL_S)
        return f"{self.issuer}{CONSENT_PATH}?request={request}"

    async def pending(self, request: str) -> dict[str, Any] | None:
        """A sign-in waiting on the consent page (None: unknown, expired or already decided)."""
        return await self.records.get(PENDING, request)

    def person(self, token: str) -> Identity | None:
        return self.people.lookup(token)

    async def decide(self, request: str, person: Identity | None) -> str:
        """Where the browser goes once the person has decided: back to the client with a code (the
        scopes the person's token may grant) or with `access_denied` (`person` None: denied). The
        sign-in is taken: it cannot be decided twice."""
        pending = await self.records.take(PENDING, request)
        if pending is None:
            raise LookupError("this sign-in has expired or was already decided; start again from your app")
        back = {"state": pending["state"], "iss": self.issuer}
        if person is None:
            return construct_redirect_uri(pending["redirect_uri"], error="access_denied", **back)
        scopes = [s for s in pending["scopes"] if SCOPE_ROLES.get(s) in person.roles]
        code = secrets.token_urlsafe(32)
        await self.records.put(CODE, _digest(code), {
            "scopes": scopes, "expires_at": time.time() + CODE_TTL_S, "client_id": pending["client_id"],
            "code_challenge": pending["code_challenge"], "redirect_uri": pending["redirect_uri"],
            "redirect_uri_provided_explicitly": pending["explicit"], "resource": self.resource,
            "subject": person.user_id}, ttl_s=CODE_TTL_S)
        return construct_redirect_uri(pending["redirect_uri"], code=code, **back)

    # --- codes and tokens

    async def load_authorization_code(self, client: OAuthClientInformationFull,
                                      authorization_code: str) -> AuthorizationCode | None:
        held = await self.records.get(CODE, _digest(authorization_code))
        if held is None or held["client_id"] != client.client_id:
            return None
        return AuthorizationCode.model_validate({**held, "code": authorization_code})

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          authorization_code: AuthorizationCode) -> OAuthToken:
        if await self.records.take(CODE, _digest(authorization_code.code)) is None:
            raise TokenError("invalid_grant", "authorization code already used")
        return await self._tokens(client, authorization_code.scopes, authorization_code.subject or "")

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        held = await self.records.get(REFRESH, _digest(refresh_token))
        if held is None or held["client_id"] != client.client_id:
            return None
        return RefreshToken.model_validate({**held, "token": refresh_token})

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: RefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        if await self.records.take(REFRESH, _digest(refresh_token.token)) is None:
            raise TokenError("invalid_grant", "refresh token already used or revoked")
        return await self._tokens(client, scopes or refresh_token.scopes, refresh_token.subject or "")

    async def _tokens(self, client: OAuthClientInformationFull, scopes: list[str], subject: str) -> OAuthToken:
        kid, key = await self.signing_key()
        now = int(time.time())
        life = self.lifetimes
        access = jwt.encode({"iss": self.issuer, "aud": self.resource, "sub": subject, "client_id": client.client_id,
                             "scope": " ".join(scopes), "iat": now, "exp": now + int(life.access_s),
                             "jti": secrets.token_urlsafe(12)},
                            key, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
        refresh = secrets.token_urlsafe(32)
        await self.records.put(REFRESH, _digest(refresh), {
            "client_id": client.client_id, "scopes": scopes, "expires_at": now + int(life.refresh_s),
            "resource": self.resource, "subject": subject}, ttl_s=life.refresh_s)
        return OAuthToken(access_token=access, expires_in=int(life.access_s), scope=" ".join(scopes),
                          refresh_token=refresh)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return None  # access tokens are checked by the resource side (access.py); revoking one is refused

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, RefreshToken):
            await self.records.take(REFRESH, _digest(token.token))

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "identity assertions are not accepted here")

    # --- the HTTP side

    def routes(self) -> list[Route]:
        """The SDK's authorization-server routes over this provider, with metadata that names the issuer
        exactly and says client metadata documents are accepted; and the consent page."""
        options = ClientRegistrationOptions(enabled=True, valid_scopes=list(SCOPE_ROLES), default_scopes=[BASE_SCOPE])
        revocation = RevocationOptions(enabled=True)
        base = build_metadata(AnyHttpUrl(self.issuer), None, options, revocation)
        metadata = OAuthMetadata.model_validate({
            **base.model_dump(mode="json", exclude_none=True), "issuer": self.issuer,
            "client_id_metadata_document_supported": True, "authorization_response_iss_parameter_supported": True,
            "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"]})
        routes = create_auth_routes(self, AnyHttpUrl(self.issuer), client_registration_options=options,  # type: ignore[arg-type]
                                    revocation_options=revocation)
        handler = cors_middleware(MetadataHandler(metadata).handle, ["GET", "OPTIONS"])
        replaced = {"/.well-known/oauth-authorization-server": handler, REVOCATION_PATH: self._revoke_endpoint()}
        every = [Route(r.path, endpoint=replaced[r.path], methods=["GET", "POST", "OPTIONS"]) if r.path in replaced
                 else r for r in routes if isinstance(r, Route)] + consent_routes(self)
        return [Route(r.path, endpoint=self.throttle.guard(r.app), methods=sorted(r.methods or ())) for r in every]

    def _revoke_endpoint(self) -> ASGIApp:
        """RFC 7009 revocation. Stands in for the SDK's handler, which requires a `client_secret` field
        even from a public client (PKCE, no secret), so such a client could never revoke."""
        authenticator = ClientAuthenticator(self)  # type: ignore[arg-type]

        async def revoke(request: Request) -> Response:
            try:
                client = await authenticator.authenticate_request(request)
            except AuthenticationError as exc:
                return JSONResponse({"error": "invalid_client", "error_description": exc.message}, status_code=401)
            token = (await request.form()).get("token")
            if not isinstance(token, str) or not token:
                return JSONResponse({"error": "invalid_request", "error_description": "token is required"},
                                    status_code=400)
            held = await self.load_refresh_token(client, token)
            if held is not None:
                await self.revoke_token(held)
            return Response(status_code=200, headers={"cache-control": "no-store"})  # known or not (RFC 7009 §2.2)

        return cors_middleware(revoke, ["POST", "OPTIONS"])


__all__ = ["BuiltinAuthorizationServer", "Client", "Lifetimes"]
