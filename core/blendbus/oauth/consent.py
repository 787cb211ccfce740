"""The consent page of the built-in authorization server: the person proves who they are with their
personal blendbus token and allows (or denies) the app that asked.

A plain HTML form, no script, no framework: an input named `token`, and submit buttons named
`decision` with the values `allow` and `deny`. Against cross-site requests, the form carries a
secret that must also come back in a SameSite=Strict cookie and match the sign-in's own; against
framing, `frame-ancestors 'none'` and `X-Frame-Options: DENY`.
"""

from __future__ import annotations

import hmac
from html import escape
from typing import Any, Protocol
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..auth import Identity
from ..protocol import SCOPE_ROLES

CONSENT_PATH = "/oauth/consent"
COOKIE = "blendbus_consent"
FORM_MAX_BYTES = 16 * 1024
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY", "cache-control": "no-store", "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
SCOPE_WORDS = {"blendbus": "use the tools of your Blender bus: run code, change and render your scenes",
               "blendbus:peer": "connect a Blender to your bus",
               "blendbus:operator": "see every user's bus on the status page"}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to blendbus</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 34rem; margin: 2rem auto; padding: 0 1rem; color: #111; }}
label, input, button {{ font: inherit; }} input {{ width: 100%; box-sizing: border-box; padding: .5rem; }}
button {{ padding: .5rem 1.25rem; margin: 1rem .5rem 0 0; }} [role=alert] {{ color: #a00; font-weight: 600; }}
code {{ word-break: break-all; }}
</style></head>
<body><main>
<h1>Sign in to blendbus</h1>
{message}
<p><strong>{client}</strong> (<code>{client_id}</code>) asks to:</p>
<ul>{scopes}</ul>
<p>After you decide, your browser returns to <code>{back}</code>.</p>
<form method="post" action="{action}">
<input type="hidden" name="request" value="{request}">
<input type="hidden" name="csrf" value="{csrf}">
<label for="token">Your personal blendbus token (from <code>blendbus token new YOUR-NAME</code>)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required aria-describedby="why">
<p id="why">It proves who you are here; the app never sees it.</p>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form>
</main></body></html>
"""


def _page(pending: dict[str, Any], request: str, action: str, message: str = "", status: int = 200) -> HTMLResponse:
    html = PAGE.format(
        message=f'<p role="alert">{escape(message)}</p>' if message else "",
        client=escape(str(pending["client_name"])), client_id=escape(str(pending["client_id"])),
        scopes="".join(f"<li>{escape(SCOPE_WORDS.get(s, s))} (<code>{escape(s)}</code>)</li>" for s in pending["scopes"]),
        back=escape(pending["redirect_uri"].split("?")[0]), action=escape(action), request=escape(request),
        csrf=escape(pending["csrf"]))
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    response.set_cookie(COOKIE, pending["csrf"], httponly=True, samesite="strict", path=urlsplit(action).path,
                        secure=action.startswith("https:"), max_age=600)
    return response


def _problem(message: str, status: int) -> HTMLResponse:
    return HTMLResponse(f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>blendbus sign-in</title>'
                        f'</head><body><main><h1>blendbus sign-in</h1><p role="alert">{escape(message)}</p></main>'
                        "</body></html>", status_code=status, headers=HEADERS)


class Decider(Protocol):
    """What the page asks of the authorization server (server.py)."""

    issuer: str

    async def pending(self, request: str) -> dict[str, Any] | None: ...

    def person(self, token: str) -> Identity | None: ...

    async def decide(self, request: str, person: Identity | None) -> str: ...


def consent_routes(server: Decider) -> list[Route]:
    action = server.issuer + CONSENT_PATH

    async def show(request: Request) -> Response:
        sign_in = request.query_params.get("request", "")
        pending = await server.pending(sign_in)
        if pending is None:
            return _problem("This sign-in has expired or was already decided; start again from your app.", 400)
        return _page(pending, sign_in, action)

    async def decide(request: Request) -> Response:
        if int(request.headers.get("content-length") or 0) > FORM_MAX_BYTES:
            return _problem("The form is too large.", 413)
        form = await request.form(max_files=0, max_fields=8)
        sign_in, csrf = str(form.get("request", "")), str(form.get("csrf", ""))
        pending = await server.pending(sign_in)
        if pending is None:
            return _problem("This sign-in has expired or was already decided; start again from your app.", 400)
        cookie = request.cookies.get(COOKIE, "")
        if not (csrf and hmac.compare_digest(csrf, pending["csrf"]) and hmac.compare_digest(cookie, pending["csrf"])):
            return _problem("This form did not come from this page (cross-site request refused); reload the page"
                            " from your app and try again.", 403)
        if form.get("decision") == "deny":
            return RedirectResponse(await server.decide(sign_in, None), status_code=303, headers=HEADERS)
        if form.get("decision") != "allow":
            return _page(pending, sign_in, action, "Choose Allow or Deny.", status=400)
        person = server.person(str(form.get("token", "")).strip())
        if person is None:
            return _page(pending, sign_in, action, "That token is not valid here. Ask whoever runs this server for"
                         " one (blendbus token new YOUR-NAME).", status=401)
        if not any(SCOPE_ROLES.get(s) in person.roles for s in pending["scopes"]):
            return _page(pending, sign_in, action, "Your token cannot grant what this app asks for; ask for a token"
                         " with that role.", status=403)
        try:
            back = await server.decide(sign_in, person)
        except LookupError as exc:
            return _problem(str(exc), 400)
        return RedirectResponse(back, status_code=303, headers=HEADERS)

    return [Route(CONSENT_PATH, show, methods=["GET"]), Route(CONSENT_PATH, decide, methods=["POST"])]
