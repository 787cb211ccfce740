-- Retention for one user (Jobs.prune): ended jobs past the age cap and beyond the size caps go; a
-- job still queued long after it was recorded and in no queue of its peer becomes lost (the replica
-- that recorded it died before queuing it: nobody can run it).
-- KEYS[1]: the user's usage hash
-- ARGV: base, age cutoff, max jobs, max bytes, orphan cutoff, now, orphan error
local now = ARGV[6]
for _, id in ipairs(redis.call('ZRANGEBYSCORE', base .. 'jobs:queued', '-inf', ARGV[5], 'LIMIT', 0, 1000)) do
  local key = job_key(id)
  local target = redis.call('HGET', key, 'target') or ''
  local queued = redis.call('LPOS', base .. 'q:' .. target, id) or redis.call('LPOS', base .. 'ul:' .. target, id)
  if not queued then
    redis.call('ZREM', base .. 'jobs:queued', id)
    if redis.call('HGET', key, 'status') == QUEUED then
      settle(id, LOST, now, '0', '', '', ARGV[7], '', true, tonumber(ARGV[3]), tonumber(ARGV[4]))
    end
  end
end
local old = redis.call('ZRANGEBYSCORE', base .. 'jobs:done', '-inf', ARGV[2], 'LIMIT', 0, 10000)
for _, id in ipairs(old) do drop(id) end
return #old + trim(tonumber(ARGV[3]), tonumber(ARGV[4]), '')
