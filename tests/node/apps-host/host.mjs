// An MCP Apps host built on the official MCP Apps SDK (@modelcontextprotocol/ext-apps AppBridge), for
// tests: the App runs behind a sandbox proxy on a second origin (sandbox.html), as the specification
// requires of web hosts; the bridge relays the App's tools/call and resources/read to the MCP server
// through window.mcpForward, which the test binds to a real MCP client. tests/sdk_apphost.py bundles
// this file with esbuild and drives the page.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

const host = (window.host = { log: [], sizes: [], modelContext: null, initialized: false, bridge: null });
const frame = document.getElementById("app");

// Every method the App sent, as it crossed the proxy: what the bridge answers and what it ignores.
window.addEventListener("message", (event) => {
  if (event.source === frame.contentWindow && event.data && typeof event.data.method === "string") {
    host.log.push(event.data.method);
  }
});

function proxyReady() {
  return new Promise((resolve) => {
    const listener = (event) => {
      if (event.source === frame.contentWindow && event.data?.method === "ui/notifications/sandbox-proxy-ready") {
        window.removeEventListener("message", listener);
        resolve();
      }
    };
    window.addEventListener("message", listener);
  });
}

// Show the App `html` for the tool call `call` ({name, arguments, result}).
window.openApp = async ({ html, call, sandboxUrl, capabilities, theme }) => {
  document.getElementById("tool").textContent = call.name;
  const bridge = new AppBridge(null, { name: "blendbus-sdk-test-host", version: "1.0.0" }, capabilities, {
    hostContext: { theme, platform: "web", displayMode: "inline", availableDisplayModes: ["inline"],
                   containerDimensions: { width: 640, maxHeight: 1200 } },
  });
  const forward = (method) => (params) => window.mcpForward(method, params);
  bridge.oncalltool = forward("tools/call");
  bridge.onreadresource = forward("resources/read");
  bridge.onloggingmessage = () => {};
  bridge.onsizechange = (size) => {
    host.sizes.push(size);
    if (size.height) frame.style.height = `${Math.min(1200, size.height)}px`;
  };
  if (capabilities.updateModelContext) {
    bridge.onupdatemodelcontext = async (context) => {
      host.modelContext = context;
      document.getElementById("context").textContent =
        (context.content || []).map((c) => c.text || "").join("\n") || JSON.stringify(context.structuredContent);
      return {};
    };
  }
  bridge.oninitialized = () => {
    host.initialized = true;
    bridge.sendToolInput({ arguments: call.arguments });
    bridge.sendToolResult(call.result);
  };
  const ready = proxyReady();
  frame.src = sandboxUrl;
  await ready;
  await bridge.connect(new PostMessageTransport(frame.contentWindow, frame.contentWindow));
  await bridge.sendSandboxResourceReady({ html, sandbox: "allow-scripts allow-same-origin" });
  host.bridge = bridge;
};

window.setTheme = (theme) => host.bridge.setHostContext({ theme });
