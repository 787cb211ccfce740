// A certified OpenID provider built by others (oidc-provider, pinned in package.json) for the OAuth
// tests: the issuer blendbus is pointed at with --oauth.
//   node oidc.mjs <port> '<config JSON>'
// config: {"keys": [private signing JWKs], "clients": [client metadata], "ttl": access-token seconds}
// A client whose id starts with "opaque" gets opaque access tokens (checked by introspection); every
// other client gets JWT access tokens (RFC 9068) for the resource it names. Hosts may register
// themselves (RFC 7591); people sign in on the provider's development login and consent pages, as
// any name (the name is the subject). Prints {"issuer": URL} once it listens; runs until killed.
import Provider from "oidc-provider";

const [port, configJson] = process.argv.slice(2);
const config = JSON.parse(configJson);
const issuer = `http://127.0.0.1:${port}`;
const SCOPES = ["blendbus", "blendbus:peer", "blendbus:operator"];

const provider = new Provider(issuer, {
  jwks: { keys: config.keys },
  clients: config.clients,
  scopes: ["openid", "offline_access", ...SCOPES],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    registration: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: SCOPES.join(" "),
        audience: resource,
        accessTokenTTL: config.ttl ?? 300,
        accessTokenFormat: client.clientId.startsWith("opaque") ? "opaque" : "jwt",
        jwt: { sign: { alg: config.keys[0].alg ?? "RS256" } },
      }),
    },
  },
});
provider.proxy = false;
const server = provider.listen(Number(port), "127.0.0.1", () => {
  console.log(JSON.stringify({ issuer }));
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
