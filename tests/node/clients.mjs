// Official TypeScript MCP SDK clients, driven by the Python tests: each scenario prints one JSON
// line of what it saw on stdout, and exits non-zero with the error on stderr when something fails.
//   node clients.mjs stdio-large-result '<server command as a JSON list>' <bytes> <largest page>
//                                                      default pages, then the largest pages of the
//                                                      text JSON escapes most
//   node clients.mjs http-large-result <url> <bytes>
//   node clients.mjs http-task <url> <seconds>          a task's whole life through callToolStream
//   node clients.mjs http-task-cancel <url> <seconds>   a task cancelled mid-run; the peer takes the next call
//   node clients.mjs http-progress <url> <seconds>      a call longer than the client's timeout, kept alive by progress
//   node clients.mjs http-subscribe <url> <uri>         resources/subscribe, then a scene edit: the update arrives
//   node clients.mjs http-logging <url> <level>         logging/setLevel, then a job's log lines: those at or above it arrive
//   node clients.mjs http-complete <url> <template>    completion/complete of a template's {name}, as the user types
//   node clients.mjs http-sample <url>                 a job asks the host's model (sampling)
//   node clients.mjs http-content <url>                a result with image, audio, resources and a link
//   node clients.mjs http-elicit <url> approve|refuse   a script under allow_code_execution = ask, and a job's
//                                                      question: the client asks its user (elicitation)
//   node clients.mjs http-apps <url> apps|plain         the tools list, with or without the MCP Apps extension
//   node clients.mjs http-tools <url>                  the tools list and a typed result (validated by the
//                                                      SDK against its outputSchema), directly or, when only
//                                                      the meta-tools are listed, through blender_call_tool
//   node clients.mjs config-entry '<entry>' '<call>'     an MCP host's configuration entry (stdio or http),
//                                                      started or reached as a host does; lists tools, calls
//                                                      {tool, arguments}; '<call>' may add env for a stdio entry
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema, ElicitRequestSchema, LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema,
  TaskStatusNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [scenario, target, size, largestPage] = process.argv.slice(2);

function transportFor(target) {
  if (target.startsWith("http")) return new StreamableHTTPClientTransport(new URL(target));
  const [command, ...args] = JSON.parse(target);
  return new StdioClientTransport({ command, args, stderr: "inherit" });
}

async function paged(client, text, repeat, length) {
  // A script printing `text` `repeat` times, read back the way a client must: the first page inline,
  // then blender_get_job(offset, length if given) until next_offset is null.
  const code = `import sys\nsys.stdout.write(${JSON.stringify(text)} * ${repeat})`;
  const first = await client.callTool({ name: "blender_execute_code", arguments: { code, timeout_s: 120 } },
    undefined, { timeout: 180_000 });
  const env = first.structuredContent;
  const pieces = [env.result];
  let offset = env.next_offset;
  let largest = JSON.stringify(first).length;
  while (offset !== null && offset !== undefined) {
    const args = length ? { job_id: env.job_id, offset, length } : { job_id: env.job_id, offset };
    const page = await client.callTool({ name: "blender_get_job", arguments: args });
    largest = Math.max(largest, JSON.stringify(page).length);
    pieces.push(page.structuredContent.result);
    offset = page.structuredContent.next_offset;
  }
  const joined = pieces.join("");
  return {
    status: env.status, truncated: env.truncated, result_bytes: env.result_bytes, pages: pieces.length,
    reassembled: joined.length, intact: joined === text.repeat(repeat), largest_message: largest,
  };
}

async function largeResult(client, bytes) {
  // Default pages; then, when the caller names the largest page a client may ask for, pages of that
  // size cut from quotes and backslashes, which JSON escapes most (and the text block escapes again).
  const seen = await paged(client, "0123456789abcdef", Math.ceil(bytes / 16));
  if (largestPage) seen.largest_pages = await paged(client, '"\\', Math.ceil(bytes / 2), Number(largestPage));
  const after = await client.callTool({ name: "blender_list_clients", arguments: {} });
  return { ...seen, still_connected: Array.isArray(after.structuredContent.clients) };
}

async function streamed(client, name, args, onCreated) {
  // Every message of a task-augmented call, as the SDK's callToolStream yields them.
  const seen = [];
  for await (const message of client.experimental.tasks.callToolStream({ name, arguments: args }, undefined,
    { task: { ttl: 600_000 } })) {
    seen.push(message);
    if (message.type === "taskCreated" && onCreated) await onCreated(message.task);
  }
  return seen;
}

async function taskLife(client, seconds) {
  const told = [];
  client.setNotificationHandler(TaskStatusNotificationSchema, (n) => { told.push(n.params.status); });
  const tools = await client.listTools();
  const sleep = tools.tools.find((t) => t.name === "blender_test_sleep");
  const seen = await streamed(client, "blender_test_sleep", { seconds, steps: 4 });
  const created = seen.find((m) => m.type === "taskCreated").task;
  const final = seen.at(-1);
  const listed = await client.experimental.tasks.listTasks();
  const got = await client.experimental.tasks.getTask(created.taskId);
  let stranger = null;
  try {
    await client.experimental.tasks.getTask("j-" + "0".repeat(32));
  } catch (error) {
    stranger = error.code;
  }
  return {
    server_tasks: client.getServerCapabilities()?.tasks ?? null, tool_execution: sleep.execution ?? null,
    types: seen.map((m) => m.type), statuses: seen.filter((m) => m.type === "taskStatus").map((m) => m.task.status),
    created_status: created.status, task_id: created.taskId, ttl: created.ttl, poll_interval: created.pollInterval,
    result: final.type === "result" ? final.result.structuredContent : String(final.error),
    is_error: final.type === "result" ? Boolean(final.result.isError) : null,
    related: final.type === "result" ? final.result._meta?.["io.modelcontextprotocol/related-task"]?.taskId : null,
    listed: listed.tasks.map((t) => t.taskId).includes(created.taskId), get_status: got.status, unknown_task: stranger,
    status_notifications: told,
  };
}

async function taskCancel(client, seconds) {
  const started = Date.now();
  const code = "import time\nt = time.time()\nwhile time.time() - t < " + seconds + ":\n    pass";
  let cancelledAt = 0;
  const seen = await streamed(client, "blender_execute_code", { code, timeout_s: 600 }, async (task) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await client.experimental.tasks.cancelTask(task.taskId);
    cancelledAt = Date.now();
  });
  const taskId = seen.find((m) => m.type === "taskCreated").task.taskId;
  const after = await client.experimental.tasks.getTask(taskId);
  const next = await client.callTool({ name: "blender_test_echo", arguments: { value: "free again" } });
  return {
    types: seen.map((m) => m.type), last: String(seen.at(-1).error ?? ""), status_after: after.status,
    next: next.structuredContent, next_ms: Date.now() - cancelledAt, total_ms: Date.now() - started,
  };
}

async function progress(client, seconds) {
  // The client gives up after 3 s without news; progress every second keeps the call alive.
  const reports = [];
  const result = await client.callTool({ name: "blender_test_sleep", arguments: { seconds, steps: 2 } }, undefined, {
    timeout: 3000, resetTimeoutOnProgress: true, onprogress: (p) => reports.push(p),
  });
  return { status: result.structuredContent.status, reports: reports.length,
           messages: reports.map((p) => p.message), rising: reports.every((p, i) => i === 0 || p.progress > reports[i - 1].progress) };
}

async function logging(client, level) {
  // logging/setLevel, then a job that writes lines at every level: only those at or above it arrive.
  const lines = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => { lines.push(n.params); });
  await client.setLoggingLevel(level);
  const levels = ["debug", "info", "notice", "warning", "error"];
  const result = await client.callTool({ name: "blender_test_log", arguments: {
    lines: levels.map((l) => [l, `said at ${l}`]) } });
  return { logging_capability: client.getServerCapabilities()?.logging ?? null, status: result.structuredContent.status,
           lines: lines.map((l) => [l.level, l.logger, String(l.data)]) };
}

async function elicit(client, approve) {
  // A job asks the person (allow_code_execution = ask): the host shows the script and answers.
  const asked = [];
  client.setRequestHandler(ElicitRequestSchema, (request) => {
    asked.push(request.params);
    return { action: "accept", content: { approve: approve === "approve" } };
  });
  const result = await client.callTool({ name: "blender_execute_code", arguments: { code: "print('approved')" } });
  const named = await client.callTool({ name: "blender_test_ask", arguments: { question: "Your name?" } });
  return { status: result.structuredContent.status, result: result.structuredContent.result,
           asked: asked.map((a) => a.message), schema: asked[0]?.requestedSchema ?? null,
           named: named.structuredContent.result };
}

async function sample(client) {
  // A job asks the host's model (sampling): a stand-in model answers one word.
  const asked = [];
  client.setRequestHandler(CreateMessageRequestSchema, (request) => {
    asked.push(request.params);
    return { role: "assistant", content: { type: "text", text: "Copper" }, model: "stand-in-1", stopReason: "endTurn" };
  });
  const result = await client.callTool({ name: "blender_test_sample", arguments: { prompt: "A metal for a teapot?" } });
  return { result: result.structuredContent.result, asked: asked.map((a) => a.messages[0].content.text),
           maxTokens: asked[0]?.maxTokens ?? null };
}

async function content(client) {
  // Every kind of content block, as the SDK parses and validates a tool result.
  const result = await client.callTool({ name: "blender_test_content", arguments: {} });
  return { kinds: result.content.map((c) => c.type), mimes: result.content.map((c) => c.mimeType ?? c.resource?.mimeType ?? null),
           link: result.content.find((c) => c.type === "resource_link") ?? null };
}

async function complete(client, uri) {
  // completion/complete on a resource template's variable, as a host's autocomplete asks while the user types.
  const answers = {};
  for (const value of ["c", "CU", ""]) {
    const got = await client.complete({ ref: { type: "ref/resource", uri }, argument: { name: "name", value } });
    answers[value] = got.completion;
  }
  return { completions_capability: client.getServerCapabilities()?.completions ?? null, answers };
}

async function subscribe(client, uri) {
  const updated = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => { updated.push(n.params.uri); });
  await client.subscribeResource({ uri });
  const result = await client.callTool({ name: "blender_execute_code", arguments: {
    code: "import bpy\nbpy.ops.mesh.primitive_uv_sphere_add()" } });
  for (let i = 0; i < 300 && updated.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 500));  // debounced: one burst of edits is one update
  return { subscribe_capability: client.getServerCapabilities()?.resources?.subscribe ?? null,
           updated: [...new Set(updated)], status: result.structuredContent.status };
}

async function apps(client) {
  // What an MCP Apps host sees, and what every other client sees (`plain`).
  const tools = (await client.listTools()).tools;
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  const resources = (await client.listResources()).resources.map((r) => r.uri);
  const app = await client.readResource({ uri: "ui://blendbus/viewport" });
  return { pick: byName.blender_pick_object?._meta ?? null, render: byName.blender_render._meta ?? null,
           resources, app_mime: app.contents[0].mimeType, server_apps: client.getServerCapabilities()?.extensions ?? null };
}

async function toolsAndTypedResult(client) {
  const tools = (await client.listTools()).tools;
  const names = tools.map((t) => t.name);
  const direct = names.includes("blender_test_count");
  const result = direct
    ? await client.callTool({ name: "blender_test_count", arguments: { text: "three small words" } })
    : await client.callTool({ name: "blender_call_tool",
                              arguments: { name: "blender_test_count", arguments: { text: "three small words" } } });
  return { names, output_schema: tools.find((t) => t.name === "blender_test_count")?.outputSchema ?? null,
           result: result.structuredContent.result, is_error: Boolean(result.isError) };
}

function transportForEntry(entry, env) {
  // As a host reads its configuration: a url (with headers) is streamable HTTP; else a command to start,
  // with the host's default environment plus the entry's own.
  if (entry.url) return new StreamableHTTPClientTransport(new URL(entry.url), { requestInit: { headers: entry.headers ?? {} } });
  return new StdioClientTransport({ command: entry.command, args: entry.args ?? [],
    env: { ...getDefaultEnvironment(), ...(env ?? {}), ...(entry.env ?? {}) }, stderr: "inherit" });
}

async function configEntry(entry, call) {
  const client = new Client({ name: "blendbus-node-host", version: "1.0.0" }, { capabilities: {} });
  try {
    await client.connect(transportForEntry(entry, call.env));
  } catch (error) {
    return { connected: false, error: String(error?.message ?? error) };
  }
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    const result = await client.callTool({ name: call.tool, arguments: call.arguments ?? {} }, undefined,
      { timeout: 180_000 });
    return { connected: true, tools, result: result.structuredContent, is_error: Boolean(result.isError) };
  } finally {
    await client.close();
  }
}

const scenarios = {
  "stdio-large-result": largeResult, "http-large-result": largeResult, "http-task": taskLife,
  "http-task-cancel": taskCancel, "http-progress": progress, "http-subscribe": subscribe, "http-apps": apps,
  "http-tools": toolsAndTypedResult, "http-logging": logging,
  "http-complete": complete, "http-elicit": elicit, "http-content": content, "http-sample": sample,
};
const APPS = { extensions: { "io.modelcontextprotocol/ui": { mimeTypes: ["text/html;profile=mcp-app"] } } };
if (scenario === "config-entry") {
  try {
    console.log(JSON.stringify(await configEntry(JSON.parse(target), JSON.parse(size))));
  } catch (error) {
    console.error(error?.stack ?? String(error));
    process.exitCode = 1;
  }
} else {
  const client = new Client({ name: "blendbus-node-test", version: "1.0.0" },
    { capabilities: scenario === "http-apps" && size === "apps" ? APPS
      : scenario === "http-elicit" ? { elicitation: { form: {} } } : scenario === "http-sample" ? { sampling: {} } : {} });
  try {
    await client.connect(transportFor(target));
    const seen = await scenarios[scenario](client, ["http-subscribe", "http-logging", "http-complete", "http-elicit"]
      .includes(scenario) ? size : Number(size));
    console.log(JSON.stringify(seen));
  } catch (error) {
    console.error(error?.stack ?? String(error));
    process.exitCode = 1;
  } finally {
    await client.close();
  }
}
