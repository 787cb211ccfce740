"""Checking an OAuth access token: whose it is, which roles its scopes grant, or why it is refused.

A JWT access token (RFC 9068) is checked against the issuer's keys: its algorithm must be one of
`ALGORITHMS` (asymmetric only: `none` and every HMAC algorithm are refused before any key is
looked at, so a token cannot pass by being signed with the issuer's public key as an HMAC secret),
the key must be the issuer's and of that algorithm's type, and `iss`, `aud`, `exp` and `nbf` must
hold within `SKEW_S`. A token that is not a JWT is asked about by RFC 7662 introspection, when the
issuer offers it and blendbus has client credentials there; a positive answer is kept for at most
`INTROSPECTION_CACHE_S`, so a revoked opaque token stops working within that time.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import jwt

from ..auth import Identity, Refusal
from ..protocol import BASE_SCOPE, SCOPE_ROLES
from .issuer import Issuer, IssuerError, UnknownKey

KEY_TYPES = {
    **{alg: ("RSA", None) for alg in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"), "EdDSA": ("OKP", "Ed25519"),
}
"""The signature algorithms an access token may use, and the key (type, curve) each must be verified with."""
ALGORITHMS = tuple(KEY_TYPES)
SKEW_S = 60
"""Clock difference tolerated between the issuer and this server, for `exp` and `nbf`."""
INTROSPECTION_CACHE_S = 30.0
INTROSPECTION_CACHE_SIZE = 10_000


class AccessTokens:
    """Turns a presented access token into an `Identity`, or raises `Refusal`."""

    def __init__(self, issuer: Issuer, audiences: tuple[str, ...], *, user_claim: str = "sub",
                 client_id: str | None = None, client_secret: str | None = None, skew_s: float = SKEW_S) -> None:
        """`audiences`: the resource identifiers that name this server (RFC 8707), the canonical one first;
        a token's `aud` must name one of them. `skew_s`: the clock difference tolerated (0 when this
        server is the issuer)."""
        self.issuer, self.audiences, self.user_claim, self.skew_s = issuer, audiences, user_claim, skew_s
        self._client = (client_id, client_secret) if client_id and client_secret else None
        self._cache: OrderedDict[str, tuple[float, Identity]] = OrderedDict()

    async def grant(self, token: str) -> Identity:
        """Who presents `token`: its user, the roles of its scopes, and a stable id of the sign-in
        (issuer, subject, client) as the credential that binds sessions and peers, across refreshes."""
        if token.count(".") == 2:
            return self._grant(await self._verified_jwt(token))
        return await self._introspected(token)

    async def _verified_jwt(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise Refusal(f"the token is not a well-formed JWT: {exc}") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Refusal(f"tokens signed with {alg!r} are not accepted (only {', '.join(ALGORITHMS)})")
        try:
            key = await self.issuer.key(header.get("kid"))
        except UnknownKey as exc:
            raise Refusal(str(exc)) from None
        except IssuerError as exc:
            raise unavailable(exc) from None
        if KEY_TYPES[alg] != (key.kty, key.crv if key.kty != "RSA" else None) or key.alg not in (None, alg):
            raise Refusal(f"the token says {alg} but the issuer's key {header.get('kid')!r} is a {key.kty} key"
                          f"{' for ' + key.alg if key.alg else ''}")
        try:
            return jwt.decode(token, key.key, algorithms=[alg], audience=list(self.audiences),
                              issuer=self.issuer.url, leeway=self.skew_s,
                              options={"require": ["exp", "iss", "aud"], "verify_signature": True})
        except jwt.ExpiredSignatureError:
            raise Refusal("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise Refusal(f"the token was issued for another resource; this one is {self.audiences[0]}"
                          " (RFC 8707)") from None
        except jwt.InvalidIssuerError:
            raise Refusal(f"the token was issued by another issuer; this server trusts {self.issuer.url}") from None
        except jwt.ImmatureSignatureError:
            raise Refusal("the token is not valid yet (nbf)") from None
        except jwt.InvalidSignatureError:
            raise Refusal("the token's signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise Refusal(f"the token is invalid: {exc}") from None

    async def _introspected(self, token: str) -> Identity:
        digest = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        if self._client is None:
            raise Refusal("the token is not a JWT, and this server has no client credentials to introspect it"
                          " (--oauth-client-id, BLENDBUS_OAUTH_CLIENT_SECRET)")
        try:
            answer = await self.issuer.introspect(token, *self._client)  # type: ignore[arg-type]
        except IssuerError as exc:
            raise unavailable(exc) from None
        if answer.get("active") is not True:
            raise Refusal("the issuer says the token is not active (expired, revoked or unknown)")
        if answer.get("iss", self.issuer.url) != self.issuer.url:
            raise Refusal(f"the token was issued by another issuer; this server trusts {self.issuer.url}")
        audience = answer.get("aud")
        named = [audience] if isinstance(audience, str) else audience if isinstance(audience, list) else []
        if not set(named) & set(self.audiences):
            raise Refusal(f"the token was issued for another resource; this one is {self.audiences[0]}"
                          " (RFC 8707)")
        exp = answer.get("exp")
        if isinstance(exp, (int, float)) and exp + self.skew_s < time.time():
            raise Refusal("the token has expired")
        grant = self._grant(answer)
        keep = INTROSPECTION_CACHE_S if not isinstance(exp, (int, float)) else min(INTROSPECTION_CACHE_S,
                                                                                    exp - time.time())
        if keep > 0:
            self._cache[digest] = (time.monotonic() + keep, grant)
            while len(self._cache) > INTROSPECTION_CACHE_SIZE:
                self._cache.popitem(last=False)
        return grant

    def _grant(self, claims: dict[str, Any]) -> Identity:
        user = claims.get(self.user_claim)
        if user is None and self.user_claim == "sub":
            user = claims.get("client_id")  # a machine client's token acting as itself (RFC 9068 §2.2)
        if not isinstance(user, str) or not user:
            raise Refusal(f"the token carries no {self.user_claim!r} claim to name its user (--oauth-user-claim)")
        roles = frozenset(SCOPE_ROLES[s] for s in scopes(claims) if s in SCOPE_ROLES)
        if not roles:
            raise Refusal(f"the token grants none of this server's scopes; ask for {BASE_SCOPE!r}", status=403,
                          error="insufficient_scope", scope=BASE_SCOPE)
        client = claims.get("client_id") or claims.get("azp") or ""
        principal = hashlib.sha256(f"{self.issuer.url}\n{claims.get('sub', user)}\n{client}".encode()).hexdigest()
        return Identity(user, roles, credential=principal)


def unavailable(exc: IssuerError) -> Refusal:
    """The token cannot be checked now (the issuer is unreachable or broken): 503, so a client retries
    rather than sign the person in again."""
    return Refusal(f"cannot check the token now: {exc}", status=503, error="temporarily_unavailable")


def scopes(claims: dict[str, Any]) -> list[str]:
    """A token's scopes: `scope` (RFC 9068, space-separated) or `scp` (a list or a string, as Entra ID and
    Okta write it)."""
    value = claims.get("scope", claims.get("scp", ""))
    if isinstance(value, str):
        return value.split()
    return [s for s in value if isinstance(s, str)] if isinstance(value, list) else []
