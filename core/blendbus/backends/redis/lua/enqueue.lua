-- One dispatch (Backend.enqueue), all or nothing: count the call, route it, record its job, queue
-- its payload, wake the peer's poll and announce it on the user's feed.
-- KEYS[1]: the user's peer set (every key touched shares its slot)
-- ARGV: base, user, job id, target ('' the only peer), kind, command, payload, payload bytes, now,
--       max calls (0: the call does not count), lease deadline, max queued, overhead, max jobs,
--       max bytes, replica, channel, events kept
-- Returns {'ok', uuid, 1 if this replica holds the peer's poll} | {'calls'} | {'route', peers...}
--       | {'backlog', uuid, n} | {'taken'} | {'full', jobs, bytes}
local user, id, target, kind, command = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now, max_calls, replica, channel = ARGV[9], tonumber(ARGV[10]), ARGV[16], ARGV[17]
local calls = base .. 'calls'
if max_calls > 0 then
  redis.call('ZREMRANGEBYSCORE', calls, '-inf', now)
  if redis.call('ZCARD', calls) >= max_calls then return {'calls'} end
end
local uuid, backlog = resolve(target)
if not uuid then return {'route', unpack(backlog)} end
if backlog >= tonumber(ARGV[12]) then return {'backlog', uuid, backlog} end
local refused = create(id, kind, command, uuid, now, tonumber(ARGV[13]), tonumber(ARGV[8]),
                       max_calls > 0 and replica or '', tonumber(ARGV[14]), tonumber(ARGV[15]))
if refused then return refused end
local here = queue(uuid, id, ARGV[7], replica, channel, user)
if max_calls > 0 then redis.call('ZADD', calls, ARGV[11], id) end
event(cjson.encode({kind = DISPATCHED, job_id = id, target_uuid = uuid, message_type = kind, command = command}),
      ARGV[18], channel, user)
return {'ok', uuid, here}
