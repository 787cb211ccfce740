-- Take a payload back before its peer took it (Peers.withdraw).
-- KEYS[1]: the peer's queue
-- ARGV: base, uuid, job id
-- Returns 1 if it was still queued, else 0
if redis.call('LREM', KEYS[1], 0, ARGV[3]) == 0 then return 0 end
redis.call('HDEL', base .. 'qp:' .. ARGV[2], ARGV[3])
return 1
