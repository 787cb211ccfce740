"""OAuth 2.1 for the hosted bus (docs/auth.md): MCP hosts sign their users in with an authorization
server, and blendbus accepts the access tokens it mints for this server.

- `issuer.py`: a trusted issuer, found by discovery: its metadata, keys and introspection.
- `access.py`: checking one access token, to an `Identity` (user, roles) or a `Refusal` (auth.py).
- `resource.py`: this server as a protected resource: its URI, metadata and challenges.
- `server.py`: the built-in authorization server (`--oauth builtin`); `clients.py`, who may use it;
  `consent.py`, the page where a person allows an app.

Import the modules themselves: this package's face imports nothing.
"""
