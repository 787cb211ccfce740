-- Where a dispatch would go (Peers.resolve).
-- KEYS[1]: the user's peer set
-- ARGV: base, target ('' the only peer)
-- Returns {'ok', uuid, backlog} | {'route', peers...}
local uuid, backlog = resolve(ARGV[2])
if not uuid then return {'route', unpack(backlog)} end
return {'ok', uuid, backlog}
