"""An MCP Apps host in a real browser, for testing an App (`register_apps`) end to end.

The host page (apphost.html) runs in a headless chromium (testing/browser.py). It shows the App
in a sandboxed frame under the spec's default content security policy (no network), speaks the
App side of the protocol over postMessage, and relays the App's `tools/call` and `resources/read`
to a real MCP client connected to the server, refusing tools whose `_meta.ui.visibility` leaves
out "app", as hosts must.

    async with connect(url, extensions=[mcp_apps.host()]) as client, AppHost(client) as host:
        result = await client.call_tool("blender_get_viewport_screenshot", {})
        await host.open("blender_get_viewport_screenshot", {}, result)
        await host.app.locator("#view").click()
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from importlib import resources
from types import TracebackType
from typing import Any

import mcp_types as types

from .browser import browser_page

PAGE = resources.files(__package__).joinpath("apphost.html").read_text(encoding="utf-8")


class AppHost:
    """One browser page hosting one App at a time, relaying to `client` (an MCP Apps client)."""

    def __init__(self, client: Any, *, width: int = 1040, height: int = 600,
                 capabilities: dict[str, Any] | None = None) -> None:
        """`capabilities`: the host's `hostCapabilities` (default: tools, resources, logging and model context)."""
        self.client, self.size, self.capabilities = client, {"width": width, "height": height}, capabilities
        self.tools: dict[str, types.Tool] = {}
        self.relayed: list[str] = []
        """Every request the App made of the server, as "method name"."""

    async def __aenter__(self) -> AppHost:
        async with AsyncExitStack() as stack:
            self.page = await stack.enter_async_context(browser_page(**self.size))
            await self.page.expose_function("mcpForward", self._forward)
            await self._load(stack)
            self._stack = stack.pop_all()
        return self

    async def _load(self, stack: AsyncExitStack) -> None:
        """Put the host page in `self.page` (what it needs beside the browser goes on `stack`)."""
        await self.page.set_content(PAGE)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stack.aclose()

    async def open(self, tool: str, arguments: dict[str, Any], result: types.CallToolResult) -> None:
        """Show the App that `tool` links to, as a host does after the LLM called it."""
        self.tools = {t.name: t for t in (await self.client.list_tools()).tools}
        meta = (self.tools[tool].meta or {}).get("ui") or {}
        if "resourceUri" not in meta:
            raise AssertionError(f"{tool} links to no App (_meta.ui.resourceUri): did the client negotiate MCP Apps?")
        read = await self.client.read_resource(meta["resourceUri"])
        html = read.contents[0].text
        await self._show(html, {"name": tool, "arguments": arguments, "result": _wire(result)})
        await self.page.wait_for_function("window.host.initialized", timeout=30_000)

    async def _show(self, html: str, call: dict[str, Any]) -> None:
        """Load the App's `html` in the page, for the tool call `call` (name, arguments, result)."""
        if self.capabilities is not None:
            await self.page.evaluate("(caps) => { window.host.capabilities = caps; }", self.capabilities)
        await self.page.evaluate("([html, call]) => window.openApp(html, call)", [html, call])

    @property
    def app(self) -> Any:
        """The App's frame, for locators (`host.app.locator("#view")`)."""
        return self.page.frame_locator("#app")

    async def frame(self) -> Any:
        """The App's frame itself (a Playwright `Frame`), to evaluate script inside the App."""
        return await (await self.page.locator("#app").element_handle()).content_frame()

    async def log(self) -> list[str]:
        """Every method the App sent the host, in order."""
        return list(await self.page.evaluate("window.host.log"))

    async def sizes(self) -> list[dict[str, int]]:
        """Every size the App reported (`ui/notifications/size-changed`), in order."""
        return list(await self.page.evaluate("window.host.sizes"))

    async def model_context(self) -> dict[str, Any] | None:
        """What the App last gave the host with `ui/update-model-context`."""
        return await self.page.evaluate("window.host.modelContext")

    async def _forward(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "resources/read":
            self.relayed.append(f"{method} {params.get('uri')}")
            return _wire(await self.client.read_resource(params["uri"]))
        name = params.get("name", "")
        self.relayed.append(f"{method} {name}")
        tool = self.tools.get(name)
        visibility = ((tool.meta or {}).get("ui") or {}).get("visibility", ["model", "app"]) if tool else []
        if "app" not in visibility:
            raise PermissionError(f"{name} is not a tool this App may call")
        return _wire(await self.client.call_tool(name, params.get("arguments") or {}))


def _wire(result: Any) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)
