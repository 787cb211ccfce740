-- Add a peer, or refresh one re-registering with the same credential and process (Peers.register).
-- KEYS[1]: the peer's hash
-- ARGV: base, uuid, credential, instance, token, now, max peers, then field, value pairs of what it says of itself
-- Returns {'held'} | {'full', peers} | the peer's fields (HGETALL)
local cur = redis.call('HMGET', KEYS[1], 'credential', 'instance')
if cur[1] then
  if cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] then return {'held'} end
else
  local n = redis.call('SCARD', base .. 'peers')
  if n >= tonumber(ARGV[7]) then return {'full', tostring(n)} end
  redis.call('HSET', KEYS[1], 'credential', ARGV[3], 'instance', ARGV[4], 'registered_at', ARGV[6], 'poller', '')
  redis.call('SADD', base .. 'peers', ARGV[2])
end
redis.call('HSET', KEYS[1], 'token', ARGV[5], 'last_seen', ARGV[6])
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HGETALL', KEYS[1])
