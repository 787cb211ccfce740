-- Claim the peers whose liveness lapsed (Peers.expired): each is handed to exactly one replica.
-- KEYS[1]: the liveness set (member "<user>\n<uuid>" -> deadline)
-- ARGV: now
-- Returns the claimed members
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(gone) do redis.call('ZREM', KEYS[1], member) end
return gone
