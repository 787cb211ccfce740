-- The user's peers (Peers.list).
-- KEYS[1]: the user's peer set
-- ARGV: base
-- Returns {{uuid, fields (HGETALL), queued}...}
local out = {}
for _, uuid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  out[#out + 1] = {uuid, redis.call('HGETALL', base .. 'peer:' .. uuid), redis.call('LLEN', base .. 'q:' .. uuid)}
end
return out
