"""An authorization server blendbus trusts: where its metadata, signing keys and introspection are.

The issuer is found by its URL alone (RFC 8414, then OpenID Connect discovery), as MCP hosts find
it. Its keys are fetched from `jwks_uri` and kept; a token signed with a key id not among them
makes one refetch (the issuer has rotated its keys), at most once per `REFETCH_S`, so a stream of
forged key ids cannot make blendbus hammer the issuer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
import jwt

from ..addresses import is_loopback

REFETCH_S = 30.0
"""Shortest time between two fetches of the issuer's keys prompted by an unknown key id."""
HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class SigningKey:
    """One of the issuer's public keys, with what its JWK says of it: the type (`kty`), the curve, and
    the algorithm, when the JWK names one."""

    kty: str
    crv: str | None
    alg: str | None
    key: Any
    """The public key, as PyJWT verifies with it."""


class IssuerError(Exception):
    """The issuer could not be reached or answered something unusable; the message says which."""


class UnknownKey(IssuerError):
    """A token names a key the issuer does not publish."""


def check_issuer_url(url: str) -> str:
    """`url` if it may be an issuer: https, or plain http on a loopback host (tests, a local IdP)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return url
    raise ValueError(f"--oauth {url!r}: an issuer URL must be https:// (plain http only on a loopback host)")


def discovery_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be: RFC 8414 §3.1 (the well-known part before the issuer's path),
    then OpenID Connect Discovery (after it), as the MCP authorization spec has clients try them."""
    parts = urlsplit(issuer)
    origin, path = f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")
    return [f"{origin}/.well-known/oauth-authorization-server{path}",
            f"{origin}/.well-known/openid-configuration{path}",
            f"{origin}{path}/.well-known/openid-configuration"]


class Issuer:
    """One trusted issuer: its metadata (fetched on first use, again after a failure) and its keys."""

    def __init__(self, url: str, http: httpx2.AsyncClient | None = None, refetch_s: float = REFETCH_S,
                 jwks: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None) -> None:
        """`jwks`: where the keys come from instead of the issuer's `jwks_uri` (this server's own issuer)."""
        self.url, self.refetch_s, self._jwks = check_issuer_url(url), refetch_s, jwks
        self._http = http or httpx2.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False)
        self._metadata: dict[str, Any] | None = None
        self._keys: dict[str, SigningKey] = {}
        self._unnamed: list[SigningKey] = []
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            async with self._lock:
                if self._metadata is None:
                    self._metadata = await self._discover()
        return self._metadata

    async def _discover(self) -> dict[str, Any]:
        tried = []
        for url in discovery_urls(self.url):
            try:
                answer = await self._http.get(url, headers={"accept": "application/json"})
            except httpx2.HTTPError as exc:
                raise IssuerError(f"cannot reach the issuer {self.url}: {exc}") from None
            if answer.status_code != 200:
                tried.append(f"{url} ({answer.status_code})")
                continue
            metadata = _json_object(answer, url)
            if metadata.get("issuer") != self.url:
                raise IssuerError(f"{url} names the issuer {metadata.get('issuer')!r}, not {self.url!r}: refusing"
                                  " it (RFC 8414 §3.3); pass --oauth exactly as the issuer names itself")
            return metadata
        raise IssuerError(f"no authorization server metadata at {self.url}; tried {', '.join(tried)}")

    async def key(self, kid: str | None) -> SigningKey:
        """The issuer's public key `kid` (a token without a kid: the issuer's only key)."""
        found = self._find(kid)
        if found is None and time.monotonic() - self._fetched_at >= self.refetch_s:
            async with self._lock:
                found = self._find(kid)
                if found is None and time.monotonic() - self._fetched_at >= self.refetch_s:
                    await self._fetch_keys()
                    found = self._find(kid)
        if found is None:
            raise UnknownKey(f"the issuer {self.url} has no signing key {kid!r}" if kid else
                              f"the token names no key id and the issuer {self.url} does not have exactly one key")
        return found

    def _find(self, kid: str | None) -> SigningKey | None:
        if kid is not None:
            return self._keys.get(kid)
        every = [*self._keys.values(), *self._unnamed]
        return every[0] if len(every) == 1 else None

    async def _fetch_keys(self) -> None:
        self._fetched_at = time.monotonic()
        entries = await self._jwks() if self._jwks is not None else await self._fetch_jwks()
        keys: dict[str, SigningKey] = {}
        unnamed: list[SigningKey] = []
        for entry in entries:
            # Only public signing keys: a symmetric key published by mistake is never one to verify with.
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
                continue
            try:
                key = SigningKey(entry["kty"], entry.get("crv"), entry.get("alg"), jwt.PyJWK(entry).key)
            except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError):
                continue  # a key type this build cannot use: tokens signed with it are refused
            if isinstance(entry.get("kid"), str):
                keys[entry["kid"]] = key
            else:
                unnamed.append(key)
        self._keys, self._unnamed = keys, unnamed

    async def _fetch_jwks(self) -> list[Any]:
        metadata = self._metadata or await self._discover()
        self._metadata = metadata
        uri = metadata.get("jwks_uri")
        if not isinstance(uri, str):
            raise IssuerError(f"the issuer {self.url} publishes no jwks_uri, so it cannot sign JWT access tokens")
        try:
            answer = await self._http.get(uri, headers={"accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise IssuerError(f"cannot fetch the issuer's keys from {uri}: {exc}") from None
        if answer.status_code != 200:
            raise IssuerError(f"the issuer's keys at {uri} answered {answer.status_code}")
        entries = _json_object(answer, uri).get("keys")
        return entries if isinstance(entries, list) else []

    async def introspect(self, token: str, client_id: str, client_secret: str) -> dict[str, Any]:
        """RFC 7662: what the issuer says of an opaque token, asked as client `client_id`."""
        endpoint = (await self.metadata()).get("introspection_endpoint")
        if not isinstance(endpoint, str):
            raise IssuerError(f"the issuer {self.url} offers no introspection, so opaque tokens cannot be checked")
        try:
            answer = await self._http.post(endpoint, data={"token": token, "token_type_hint": "access_token"},
                                           auth=(client_id, client_secret), headers={"accept": "application/json"})
        except httpx2.HTTPError as exc:
            raise IssuerError(f"cannot reach the issuer's introspection endpoint {endpoint}: {exc}") from None
        if answer.status_code != 200:
            raise IssuerError(f"the issuer's introspection endpoint answered {answer.status_code}"
                              " (are --oauth-client-id and BLENDBUS_OAUTH_CLIENT_SECRET right?)")
        return _json_object(answer, endpoint)

    async def close(self) -> None:
        await self._http.aclose()


def _json_object(answer: httpx2.Response, url: str) -> dict[str, Any]:
    try:
        value = answer.json()
    except (ValueError, json.JSONDecodeError):
        raise IssuerError(f"{url} did not answer JSON") from None
    if not isinstance(value, dict):
        raise IssuerError(f"{url} did not answer a JSON object")
    return value
