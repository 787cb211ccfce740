-- A peer's poll: drop what it acknowledged, move what is queued to its handed-out list (handed out
-- again until acknowledged), and mark the jobs handed out for the first time running, telling
-- their callers on other replicas where they run.
-- KEYS[1]: the peer's hash
-- ARGV: base, user, uuid, token, now, replica, channel, the progress message of a job that starts
--       running ('': leave their status alone), acknowledged ids...
-- Returns false (wrong token) | {fresh ids, handed-out ids, their payloads}
local user, uuid, now, replica = ARGV[2], ARGV[3], ARGV[5], ARGV[6]
local q, ul, qp = base .. 'q:' .. uuid, base .. 'ul:' .. uuid, base .. 'qp:' .. uuid
local token = redis.call('HGET', KEYS[1], 'token')
if not token or token ~= ARGV[4] then return false end
for i = 9, #ARGV do
  if redis.call('LREM', ul, 0, ARGV[i]) > 0 then redis.call('HDEL', qp, ARGV[i]) end
end
local fresh = redis.call('LRANGE', q, 0, -1)
if #fresh > 0 then
  redis.call('RPUSH', ul, unpack(fresh))
  redis.call('DEL', q)
end
redis.call('HSET', KEYS[1], 'last_seen', now, 'poller', replica)
for _, id in ipairs(ARGV[8] ~= '' and fresh or {}) do
  local key = job_key(id)
  if redis.call('HGET', key, 'status') == QUEUED then
    redis.call('HSET', key, 'status', RUNNING, 'updated', now)
    redis.call('ZREM', base .. 'jobs:queued', id)
    if waited_elsewhere(key, replica) then
      redis.call('PUBLISH', ARGV[7], cjson.encode({'progress', user, id, replica, cjson.null, ARGV[8], cjson.null}))
    end
  end
end
local ids = redis.call('LRANGE', ul, 0, -1)
if #ids == 0 then return {{}, {}, {}} end
return {fresh, ids, redis.call('HMGET', qp, unpack(ids))}
