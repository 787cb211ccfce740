// The official TypeScript MCP SDK client signing in to blendbus with OAuth, driven by the Python tests.
// Prints one JSON line of what it saw; exits non-zero with the error on stderr when something fails.
//   node oauth.mjs client-credentials <mcp url> '<{"clientId", "clientSecret", "issuer", "scope"}>'
//     The SDK's own machine-to-machine provider: from the server's 401 it finds the resource metadata,
//     then the issuer's metadata, gets a token for the resource (client_credentials, RFC 8707
//     resource indicator), and lists and calls tools with it.
//   node oauth.mjs authorization-code <mcp url> '<{"waitForExpiry": seconds, "call": {name, arguments}}>'
//     A host signing a person in: from the 401 to the metadata, dynamic client registration, PKCE, and
//     the authorization URL printed as {"authorize": URL} for the test to open in a browser; the code
//     comes back to a loopback callback; then tools are listed and called, and called again after
//     the access token has expired, which the SDK answers by refreshing it.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { createServer } from "node:http";

const [scenario, url, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson);

async function clientCredentials() {
  const provider = new ClientCredentialsProvider({
    clientId: options.clientId, clientSecret: options.clientSecret, scope: options.scope,
    expectedIssuer: options.issuer,
  });
  const seenRequests = [];
  const recordingFetch = async (input, init) => {
    const answer = await fetch(input, init);
    seenRequests.push(`${init?.method ?? "GET"} ${new URL(String(input)).pathname} ${answer.status}`);
    return answer;
  };
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: "blendbus-oauth-test", version: "1.0.0" });
  try {
    await client.connect(transport);
    const tools = await client.listTools();
    const call = await client.callTool({ name: "blender_list_clients", arguments: {} });
    return {
      tools: tools.tools.length, clients: call.structuredContent?.clients ?? null, isError: call.isError ?? false,
      scope: provider.tokens()?.scope ?? null, requests: seenRequests,
    };
  } finally {
    await client.close();
  }
}

function loopbackCallback() {
  // Where the browser brings the code back: http://127.0.0.1:<free port>/callback (RFC 8252).
  let deliver;
  const code = new Promise((resolve) => { deliver = resolve; });
  const server = createServer((request, response) => {
    const query = new URL(request.url, "http://127.0.0.1").searchParams;
    response.writeHead(200, { "content-type": "text/plain" }).end("Signed in; you can close this tab.");
    if (query.get("code") || query.get("error")) deliver(query);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    url: `http://127.0.0.1:${server.address().port}/callback`, code, close: () => server.close(),
  })));
}

async function authorizationCode() {
  const callback = await loopbackCallback();
  const state = { saved: 0 };
  const provider = {
    get redirectUrl() { return callback.url; },
    get clientMetadata() {
      return { client_name: "TypeScript SDK host", redirect_uris: [callback.url], token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"], response_types: ["code"] };
    },
    clientInformation() { return state.client; },
    saveClientInformation(info) { state.client = info; },
    tokens() { return state.tokens; },
    saveTokens(tokens) { state.tokens = tokens; state.saved += 1; },
    redirectToAuthorization(url) { console.log(JSON.stringify({ authorize: url.toString() })); },
    saveCodeVerifier(verifier) { state.verifier = verifier; },
    codeVerifier() { return state.verifier; },
  };
  const first = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  try {
    await new Client({ name: "blendbus-oauth-test", version: "1.0.0" }).connect(first);
    throw new Error("the server let an unauthenticated client in");
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  const answer = await callback.code;
  callback.close();
  if (!answer.get("code")) throw new Error(`sign-in refused: ${answer.get("error")}`);
  await first.finishAuth(answer.get("code"));
  const client = new Client({ name: "blendbus-oauth-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  try {
    const tools = await client.listTools();
    const call = await client.callTool({ name: "blender_list_clients", arguments: {} });
    await new Promise((resolve) => setTimeout(resolve, (options.waitForExpiry ?? 0) * 1000));
    const later = await client.callTool({ name: "blender_list_clients", arguments: {} });
    const called = options.call ? await client.callTool(options.call, undefined, { timeout: 300_000 }) : null;
    return {
      registered: Boolean(state.client?.client_id), tools: tools.tools.length,
      clients: call.structuredContent?.clients ?? null, after_expiry: later.structuredContent?.clients ?? null,
      tokens_saved: state.saved, scope: state.tokens?.scope ?? null, called: called?.structuredContent ?? null,
    };
  } finally {
    await client.close();
  }
}

const scenarios = { "client-credentials": clientCredentials, "authorization-code": authorizationCode };
try {
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exitCode = 1;
}
