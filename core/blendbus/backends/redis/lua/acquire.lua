-- Count a call among its user's calls in flight, unless `max calls` are already (Notifier.acquire).
-- A call's count lapses at its lease deadline: a replica that died holds no slot for long.
-- KEYS[1]: the user's calls in flight (job id -> lease deadline)
-- ARGV: base, job id, max calls, lease deadline, now
-- Returns 1 if it counts now, 0 if the user is at the cap
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[5])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
return 1
