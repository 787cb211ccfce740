"""OAuth 2.1 for the hosted bus (docs/auth.md): MCP hosts sign their users in with an authorization
server, and blendbus accepts the access tokens it mints for this server.

- `issuer.py`: the trusted issuer, found by discovery: its metadata, keys and introspection.
- `access.py`: checking one access token, to a `Grant` (user, roles) or a `Refusal`.
- `resource.py`: this server as a protected resource: its URI, metadata and challenges.
"""

from .access import Grant, Refusal
from .resource import ProtectedResource, protected_resource

__all__ = ["Grant", "ProtectedResource", "Refusal", "protected_resource"]
