"""Resources, their change notifications, prompts and completions: what a host reads and offers its
user besides tools.

A resource's contents come from running its Command on the caller's Blender; a template's variables
become the Command's parameters. Subscriptions (2025-11-25 `resources/subscribe`, 2026-07-28
`subscriptions/listen`) follow the scene's changes (changes.py); completions come from the sources
the plugins declare (completions.py).
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp.shared.uri_template import UriTemplate

from .. import mcp_apps
from .. import protocol as p
from ..completions import Completer
from ..primitives import Resource
from ..suggest import did_you_mean
from .builtin_tools import Call
from .calls import Calls, identity_of
from .changes import ChangeFeed, TooManySubscriptions
from .content import mcp_content

RESOURCE_NOT_FOUND = -32002
"""JSON-RPC error code for a resource that is not there (the MCP spec's)."""


class ResourceHandlers:
    """The resources, subscriptions, prompts and completion methods of one server."""

    def __init__(self, calls: Calls, changes: ChangeFeed, completer: Completer) -> None:
        self.calls, self.changes, self.completer = calls, changes, completer
        self.plugins = calls.plugins

    async def list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        listed = [types.Resource(uri=r.uri, name=r.name, description=r.description, mime_type=r.mime_type)
                  for r in self.plugins.resources if not r.is_template]
        if mcp_apps.negotiated(ctx):
            listed += [mcp_apps.listed(app) for app in self.plugins.apps.values()]
        return types.ListResourcesResult(resources=listed)

    async def list_resource_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[
            types.ResourceTemplate(uri_template=r.uri, name=r.name, description=r.description, mime_type=r.mime_type)
            for r in self.plugins.resources if r.is_template
        ])

    def match_resource(self, uri: str) -> tuple[Resource, dict[str, Any]] | None:
        for res in self.plugins.resources:
            if not res.is_template and res.uri == uri:
                return res, dict(res.params)
        for res in self.plugins.resources:
            if res.is_template:
                found = UriTemplate.parse(res.uri).match(uri)
                if found is not None:
                    return res, {**res.params, **found}
        return None

    async def read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        uri = str(params.uri)
        if uri in self.plugins.apps:
            return mcp_apps.contents(self.plugins.apps[uri])
        self.calls.ensure_started()
        found = self.match_resource(uri)
        if found is None:
            raise MCPError(code=RESOURCE_NOT_FOUND, message=f"resource not found: {uri}")
        res, arguments = found
        cmd = self.plugins.commands[res.command]
        env = await self.calls.run(Call(user_id=identity_of(ctx)[0]), cmd, arguments)
        if env["status"] != p.COMPLETED:
            # One line: a handler's traceback is for the peer's log, not a client. A handler that failed
            # on what the URI names (no such object) means the resource is not there.
            first = (env["error"] or env["status"]).strip().splitlines()[0]
            raise MCPError(code=RESOURCE_NOT_FOUND if env["status"] == p.FAILED else -32603,
                           message=f"{uri}: {env['status']}: {first}")
        meta = {"revision": env["revision"]} if "revision" in env else None  # which scene the text shows
        embedded = [b for b in p.content_blocks(env["result"]) if b["type"] == "resource"] \
            if p.content_problem(env["result"]) is None else []
        if embedded:  # the handler gave the contents themselves (text or binary), as results give them
            return types.ReadResourceResult(contents=[mcp_content(b).resource for b in embedded])  # type: ignore[union-attr]
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=uri, mime_type=res.mime_type, text=json.dumps(env["result"]), meta=meta)
        ])

    async def subscribe(self, ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
        """2025-11-25 `resources/subscribe`: notifications/resources/updated when the scene behind it changes."""
        uri = str(params.uri)
        if self.match_resource(uri) is None:
            raise MCPError(code=RESOURCE_NOT_FOUND, message=f"resource not found: {uri}; resources/list names them")
        self.calls.ensure_started()
        try:
            self.changes.subscribe(identity_of(ctx)[0], uri, ctx.session)
        except TooManySubscriptions as exc:
            raise MCPError(code=-32602, message=str(exc)) from None
        return types.EmptyResult()

    async def unsubscribe(self, ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        self.changes.unsubscribe(identity_of(ctx)[0], str(params.uri), ctx.session)
        return types.EmptyResult()

    async def listen(self, ctx: Any, params: types.SubscriptionsListenRequestParams) -> Any:
        """2026-07-28 `subscriptions/listen`: a stream of the caller's own change notifications."""
        self.calls.ensure_started()
        return await self.changes.listen(identity_of(ctx)[0], ctx, params)

    async def complete(self, ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        self.calls.ensure_started()
        return await self.completer.complete(identity_of(ctx)[0], params)

    async def list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[
            types.Prompt(name=pr.name, title=pr.title, description=pr.description, arguments=[
                types.PromptArgument(name=a.name, description=a.description, required=a.required) for a in pr.arguments])
            for pr in self.plugins.prompts.values()
        ])

    async def get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = self.plugins.prompts.get(params.name)
        if prompt is None:
            raise MCPError(code=-32602, message=f"unknown prompt {params.name!r}"
                           f"{did_you_mean(params.name, self.plugins.prompts)}; prompts/list lists them")
        arguments = dict(params.arguments or {})
        try:
            text = prompt.render(arguments)
        except ValueError as exc:
            raise MCPError(code=-32602, message=str(exc)) from None
        blocks = prompt.blocks(arguments)
        problem = p.content_problem({p.CONTENT_KEY: blocks})
        if problem is not None:  # an argument made a block unsound (a resource uri without a scheme)
            raise MCPError(code=-32602, message=f"prompt {prompt.name!r}: {problem}")
        return types.GetPromptResult(description=prompt.description, messages=[
            types.PromptMessage(role="user", content=types.TextContent(type="text", text=text)),
            *(types.PromptMessage(role="user", content=mcp_content(block)) for block in blocks)])
