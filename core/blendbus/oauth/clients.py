"""Who may ask the built-in authorization server for a sign-in: clients that registered (RFC 7591,
kept for hosts that still use it) and clients identified by the URL of their metadata document
(Client ID Metadata Documents, how MCP hosts identify themselves now).

A redirect URI must match a registered one exactly, except that a loopback URI may use any port
(RFC 8252 §7.3: a native app listens on whatever port is free).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx2
from mcp.shared.auth import InvalidRedirectUriError, OAuthClientInformationFull
from pydantic import AnyUrl, ValidationError

from ..addresses import is_loopback
from ..backends.base import Records
from ..protocol import SCOPE_ROLES

DOCUMENT_MAX_BYTES = 64 * 1024
DOCUMENT_TTL_S = 600.0
REGISTRATION_TTL_S = 180 * 86400.0
"""A registered client is forgotten after this long (it registers again), so registrations cannot pile up."""
"""How long a fetched client metadata document is kept before it is fetched again."""
REGISTERED, DOCUMENTS = "client", "client-document"


class Client(OAuthClientInformationFull):
    """A client as the SDK's handlers check it, with the loopback-port rule for redirect URIs."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and self.redirect_uris and redirect_uri not in self.redirect_uris:
            if not any(same_but_port(redirect_uri, known) for known in self.redirect_uris):
                raise InvalidRedirectUriError(f"Redirect URI '{redirect_uri}' not registered for client")
            return redirect_uri
        return super().validate_redirect_uri(redirect_uri)


def same_but_port(given: AnyUrl, known: AnyUrl) -> bool:
    """Both are http loopback URIs that differ at most in their port (RFC 8252 §7.3)."""
    a, b = urlsplit(str(given)), urlsplit(str(known))
    return (a.scheme == b.scheme == "http" and a.hostname == b.hostname and a.hostname is not None
            and is_loopback(a.hostname) and (a.path, a.query) == (b.path, b.query))


class Clients:
    """Registered clients (in `Records`) and fetched client metadata documents."""

    def __init__(self, records: Records, *, local_documents: bool) -> None:
        """`local_documents`: documents on loopback or private addresses may be fetched (a server on
        loopback, for tests and a local set-up); otherwise only https on public addresses, so a client
        id cannot make the server reach into its own network."""
        self.records, self.local_documents = records, local_documents

    async def get(self, client_id: str) -> Client | None:
        if client_id.startswith(("https://", "http://")):
            return await self._document(client_id)
        held = await self.records.get(REGISTERED, client_id)
        return Client.model_validate(held) if held is not None else None

    async def register(self, info: OAuthClientInformationFull) -> None:
        await self.records.put(REGISTERED, info.client_id or "", info.model_dump(mode="json", exclude_none=True),
                               ttl_s=REGISTRATION_TTL_S)

    async def _document(self, url: str) -> Client | None:
        held = await self.records.get(DOCUMENTS, url)
        if held is None:
            fetched = await self._fetch(url)
            if fetched is None:
                return None
            held = fetched
            await self.records.put(DOCUMENTS, url, held, ttl_s=DOCUMENT_TTL_S)
        return Client.model_validate(held)

    async def _fetch(self, url: str) -> dict[str, Any] | None:
        """The client metadata document at `url`, as a client record; None if it is not a usable one."""
        parts = urlsplit(url)
        if not parts.hostname or parts.path in ("", "/") or parts.fragment or "@" in parts.netloc:
            return None
        if not (parts.scheme == "https" or (self.local_documents and is_loopback(parts.hostname))):
            return None
        if not self.local_documents and not await _public(parts.hostname):
            return None
        try:
            async with httpx2.AsyncClient(timeout=5.0, follow_redirects=False) as http:
                async with http.stream("GET", url, headers={"accept": "application/json"}) as answer:
                    if answer.status_code != 200:
                        return None
                    body = b""
                    async for piece in answer.aiter_bytes():
                        body += piece
                        if len(body) > DOCUMENT_MAX_BYTES:
                            return None
            document = json.loads(body)
        except (httpx2.HTTPError, ValueError):
            return None
        if not isinstance(document, dict) or document.get("client_id") != url:
            return None  # the document must name itself: nobody can speak for another URL
        if document.get("token_endpoint_auth_method", "none") != "none":
            return None  # a document cannot carry a secret; only public clients with PKCE
        try:
            client = Client.model_validate({
                **{k: v for k, v in document.items() if k in ("client_name", "client_uri", "logo_uri", "redirect_uris")},
                "client_id": url, "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "scope": " ".join(SCOPE_ROLES)})
        except ValidationError:
            return None
        return client.model_dump(mode="json", exclude_none=True) if client.redirect_uris else None


async def _public(host: str) -> bool:
    """Every address `host` resolves to is a public one."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_global for info in infos)
