-- The peer was heard from (Peers.authenticate with touch): note when, if the token is its own.
-- KEYS[1]: the peer's hash
-- ARGV: base, token, now
-- Returns the peer's fields (HGETALL; empty when it is not registered)
local token = redis.call('HGET', KEYS[1], 'token')
if token and token == ARGV[2] then redis.call('HSET', KEYS[1], 'last_seen', ARGV[3]) end
return redis.call('HGETALL', KEYS[1])
