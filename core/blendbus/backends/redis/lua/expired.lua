-- Claim the peers whose liveness lapsed (Peers.expired): each is handed to one replica at a time. A
-- claimed peer stays in the set, its deadline moved to the claim's end: the replica that claimed it
-- removes it when it unregisters the peer, once its jobs have ended. If that replica dies, or its
-- Redis fails over, first, the claim lapses and the peer is claimed again.
-- KEYS[1]: the liveness set (member "<user>\n<uuid>" -> deadline)
-- ARGV: now, the claim's end
-- Returns the claimed members
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(gone) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return gone
