"""An MCP Apps host built on the official MCP Apps SDK (`@modelcontextprotocol/ext-apps`, pinned in
tests/node): its `AppBridge` speaks for the host, and the App runs behind a sandbox proxy on a second
origin, as the specification asks of web hosts. It has the project's own `AppHost`'s interface, so a
test runs the same App under both; tests/node/apps-host holds the page, the proxy and the bridge's
wiring, bundled here with the pinned esbuild."""

from __future__ import annotations

import subprocess
import threading
from contextlib import AsyncExitStack
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from blendbus.testing.apphost import AppHost

NODE = Path(__file__).parent / "node"
SOURCES = NODE / "apps-host"
APP_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
              " img-src 'self' data:; media-src 'self' data:; connect-src 'none'; object-src 'none'; base-uri 'self'")
"""The Content-Security-Policy an App that declares no domains runs under (the MCP Apps default): the
proxy page sends it as a header, and the App's frame, written by the proxy, keeps it."""
CAPABILITIES: dict[str, Any] = {"serverTools": {}, "serverResources": {}, "logging": {},
                                "updateModelContext": {"text": {}, "structuredContent": {}}}


def bundle(into: Path) -> Path:
    """The bridge's wiring and the SDK in one browser script (esbuild, from tests/node)."""
    out = into / "host.js"
    subprocess.run([str(NODE / "node_modules" / ".bin" / "esbuild"), str(SOURCES / "host.mjs"), "--bundle",
                    "--format=iife", "--log-level=warning", f"--outfile={out}"], cwd=NODE, check=True, timeout=120)
    return out


class _Files(BaseHTTPRequestHandler):
    """Serves a fixed set of files: path -> (content type, body, extra headers)."""

    def __init__(self, files: dict[str, tuple[str, bytes, dict[str, str]]], *args: Any) -> None:
        self.files = files
        super().__init__(*args)

    def do_GET(self) -> None:  # noqa: N802 - the http.server spelling
        found = self.files.get(self.path.split("?")[0])
        if found is None:
            self.send_error(404)
            return
        kind, body, headers = found
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _serve(stack: AsyncExitStack, files: dict[str, tuple[str, bytes, dict[str, str]]]) -> int:
    """Serve `files` on a free loopback port until `stack` closes; the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Files, files))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    stack.callback(stop)
    return server.server_address[1]


class SdkAppHost(AppHost):
    """`AppHost` with the official SDK's host side: the host page on http://127.0.0.1:PORT, the sandbox
    proxy on http://localhost:OTHER (another origin), the App inside the proxy."""

    def __init__(self, client: Any, workdir: Path, *, theme: str = "light", **kw: Any) -> None:
        super().__init__(client, **kw)
        self.workdir, self.theme = workdir, theme

    async def _load(self, stack: AsyncExitStack) -> None:
        html = "text/html; charset=utf-8"
        script = bundle(self.workdir).read_bytes()
        host = _serve(stack, {"/host.html": (html, (SOURCES / "host.html").read_bytes(), {}),
                              "/host.js": ("text/javascript", script, {})})
        proxy = _serve(stack, {"/sandbox.html": (html, (SOURCES / "sandbox.html").read_bytes(),
                                                 {"Content-Security-Policy": APP_POLICY})})
        self.sandbox_url = f"http://localhost:{proxy}/sandbox.html"
        await self.page.goto(f"http://127.0.0.1:{host}/host.html")

    async def _show(self, html: str, call: dict[str, Any]) -> None:
        await self.page.evaluate("(o) => window.openApp(o)", {
            "html": html, "call": call, "sandboxUrl": self.sandbox_url, "theme": self.theme,
            "capabilities": self.capabilities if self.capabilities is not None else CAPABILITIES})

    @property
    def app(self) -> Any:
        """The App's frame (inside the proxy's), for locators."""
        return self.page.frame_locator("#app").frame_locator("iframe")

    async def frame(self) -> Any:
        proxy = await (await self.page.locator("#app").element_handle()).content_frame()
        return await (await proxy.locator("iframe").element_handle()).content_frame()

    async def set_theme(self, theme: str) -> None:
        """The host's theme changed (`ui/notifications/host-context-changed`, sent by the bridge)."""
        await self.page.evaluate("(theme) => window.setTheme(theme)", theme)
