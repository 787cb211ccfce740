// Official TypeScript MCP SDK clients, driven by the Python tests: each scenario prints one JSON
// line of what it saw on stdout, and exits non-zero with the error on stderr when something fails.
//   node clients.mjs stdio-large-result '<server command as a JSON list>' <bytes>
//   node clients.mjs http-large-result <url> <bytes>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [scenario, target, size] = process.argv.slice(2);

function transportFor(target) {
  if (target.startsWith("http")) return new StreamableHTTPClientTransport(new URL(target));
  const [command, ...args] = JSON.parse(target);
  return new StdioClientTransport({ command, args, stderr: "inherit" });
}

async function largeResult(client, bytes) {
  // A script printing `bytes` characters, read back the way a client must: the first page inline,
  // then blender_get_job(offset) until next_offset is null.
  const code = `import sys\nsys.stdout.write("0123456789abcdef" * ${Math.ceil(bytes / 16)})`;
  const first = await client.callTool({ name: "blender_execute_code", arguments: { code, timeout_s: 120 } },
    undefined, { timeout: 180_000 });
  const env = first.structuredContent;
  const pieces = [env.result];
  let offset = env.next_offset;
  let largest = JSON.stringify(first).length;
  while (offset !== null && offset !== undefined) {
    const page = await client.callTool({ name: "blender_get_job", arguments: { job_id: env.job_id, offset } });
    largest = Math.max(largest, JSON.stringify(page).length);
    pieces.push(page.structuredContent.result);
    offset = page.structuredContent.next_offset;
  }
  const after = await client.callTool({ name: "blender_list_clients", arguments: {} });
  return {
    status: env.status, truncated: env.truncated, result_bytes: env.result_bytes, pages: pieces.length,
    reassembled: pieces.join("").length, largest_message: largest,
    still_connected: Array.isArray(after.structuredContent.clients),
  };
}

const scenarios = { "stdio-large-result": largeResult, "http-large-result": largeResult };
const client = new Client({ name: "blendbus-node-test", version: "1.0.0" });
try {
  await client.connect(transportFor(target));
  const seen = await scenarios[scenario](client, Number(size));
  console.log(JSON.stringify(seen));
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exitCode = 1;
} finally {
  await client.close();
}
