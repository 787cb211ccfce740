-- Remove a peer with its queues, waking its open poll wherever it is held (Peers.unregister).
-- KEYS[1]: the peer's hash
-- ARGV: base, user, uuid, channel
-- Returns 1 if it was registered, else 0
local uuid = ARGV[3]
local existed = redis.call('DEL', KEYS[1])
redis.call('DEL', base .. 'q:' .. uuid, base .. 'ul:' .. uuid, base .. 'qp:' .. uuid)
redis.call('SREM', base .. 'peers', uuid)
redis.call('PUBLISH', ARGV[4], cjson.encode({'wake', ARGV[2], uuid}))
return existed
