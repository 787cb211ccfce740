// The official TypeScript MCP SDK client signing in to blendbus with OAuth, driven by the Python tests.
// Prints one JSON line of what it saw; exits non-zero with the error on stderr when something fails.
//   node oauth.mjs client-credentials <mcp url> '<{"clientId", "clientSecret", "issuer", "scope"}>'
//     The SDK's own machine-to-machine provider: from the server's 401 it finds the resource metadata,
//     then the issuer's metadata, gets a token for the resource (client_credentials, RFC 8707
//     resource indicator), and lists and calls tools with it.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

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

const scenarios = { "client-credentials": clientCredentials };
try {
  console.log(JSON.stringify(await scenarios[scenario]()));
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exitCode = 1;
}
