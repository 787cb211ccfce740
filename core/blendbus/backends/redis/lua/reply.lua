-- A peer's word on its own job (Backend.reply): progress, or its end, which moves the job forward
-- only, stores its result and error, announces it on the user's feed and tells a caller waiting on
-- another replica (a caller here is answered by the replica itself).
-- KEYS[1]: the job's hash
-- ARGV: base, user, uuid, token, job id, status, now, how ('0' no result, '1' inline, '2' staged),
--       result text, format, error, progress fraction ('' none), '1' if a message, message,
--       max jobs, max bytes, replica, channel, events kept, scene account ('' none), log level ('' none: the
--       message is progress, kept; else a log line, passed on only), statuses it may move from...
-- Returns {'auth'} | {'nojob'} | {'other'} | {'stale', status} | {'ok', the job's fields...}
local user, uuid, id, status, now, replica, channel = ARGV[2], ARGV[3], ARGV[5], ARGV[6], ARGV[7], ARGV[17], ARGV[18]
local max_jobs, max_bytes = tonumber(ARGV[15]), tonumber(ARGV[16])
local peer = base .. 'peer:' .. uuid
local token = redis.call('HGET', peer, 'token')
if not token or token ~= ARGV[4] then return {'auth'} end
redis.call('HSET', peer, 'last_seen', now)
local key = KEYS[1]
local target = redis.call('HGET', key, 'target')
if not target then
  redis.call('DEL', key .. ':result:new')
  return {'nojob'}
end
if target ~= uuid then
  redis.call('DEL', key .. ':result:new')
  return {'other'}
end
if status == RUNNING then
  local level = ARGV[21]
  if level == '' then note_progress(id, ARGV[12], ARGV[13] == '1' and ARGV[14] or nil, now, max_jobs, max_bytes) end
  if waited_elsewhere(key, replica) then
    local fraction = ARGV[12] ~= '' and tonumber(ARGV[12]) or cjson.null
    local message = ARGV[13] == '1' and ARGV[14] or cjson.null
    redis.call('PUBLISH', channel, cjson.encode({'progress', user, id, replica, fraction, message,
                                                 level ~= '' and level or cjson.null}))
  end
  return {'ok', unpack(redis.call('HGETALL', key))}
end
local lower = {}
for i = 22, #ARGV do lower[#lower + 1] = ARGV[i] end
if not forward(key, lower) then
  redis.call('DEL', key .. ':result:new')
  return {'stale', redis.call('HGET', key, 'status')}
end
settle(id, status, now, ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[20], true, max_jobs, max_bytes)
event(cjson.encode({kind = JOB_UPDATE, job_id = id, status = status, client_uuid = uuid}), ARGV[19], channel, user)
if waited_elsewhere(key, replica) then
  redis.call('PUBLISH', channel, cjson.encode({'done', user, id, replica}))
end
return {'ok', unpack(redis.call('HGETALL', key))}
