-- What the scripts of one user share. Every script's ARGV[1] is the user's key base
-- ("<prefix>:{<user>}:"): each key here starts with it, so one script touches one hash slot.
-- The names shared with Python (QUEUED, RUNNING, LOST, DISPATCHED, JOB_UPDATE) are declared above
-- this library from protocol.py. A job is a hash (kind, command, target, status, created, updated, error, progress, message,
-- format, waiter, watched, and the byte counts fixed, payload, rlen, elen, mlen, size); its result
-- text is a string of its own (job:<id>:result), so a page is a GETRANGE.
local base = ARGV[1]

-- In Redis Cluster a user's slot may be moving between nodes (a reshard): its keys go over a few at
-- a time, so a script on either node would see part of them, and fail at the first key it lacks after
-- writing some. So every script first asks about two keys that never exist: a moving slot answers a
-- command on missing keys with a redirection (ASK where it leaves, TRYAGAIN where it arrives), which
-- pcall returns as an error. The script then stops before touching anything and answers TRYAGAIN,
-- which the client retries until the slot has moved (scripts.run). A stable slot, or a Redis that is
-- not a cluster, answers 0; nothing can move while a script runs.
if type(redis.pcall('EXISTS', base .. 'never:1', base .. 'never:2')) == 'table' then
  return redis.error_reply('TRYAGAIN the slot of ' .. base .. ' is moving between cluster nodes')
end

local function job_key(id)
  return base .. 'job:' .. id
end

local function usage()
  local u = redis.call('HMGET', base .. 'usage', 'jobs', 'bytes')
  return tonumber(u[1]) or 0, tonumber(u[2]) or 0
end

-- A job's bytes, as the user's caps count them: its fixed part, its payload while it waits for
-- Blender, its result, its error and its progress message; kept in `size` and in the user's usage.
local function resize(key)
  local f = redis.call('HMGET', key, 'fixed', 'payload', 'rlen', 'elen', 'mlen', 'slen', 'size')
  local new = 0
  for i = 1, 6 do new = new + (tonumber(f[i]) or 0) end
  redis.call('HSET', key, 'size', new)
  redis.call('HINCRBY', base .. 'usage', 'bytes', new - (tonumber(f[7]) or 0))
end

local function drop(id)
  redis.call('ZREM', base .. 'jobs:done', id)
  redis.call('ZREM', base .. 'jobs:all', id)
  redis.call('ZREM', base .. 'jobs:queued', id)
  local key = job_key(id)
  local size = tonumber(redis.call('HGET', key, 'size') or '0')
  redis.call('DEL', key .. ':result')
  if redis.call('DEL', key) == 1 then
    redis.call('HINCRBY', base .. 'usage', 'jobs', -1)
    redis.call('HINCRBY', base .. 'usage', 'bytes', -size)
  end
end

-- Drop the oldest ended jobs (never `keep`) until the user is within both caps; how many went.
local function trim(max_jobs, max_bytes, keep)
  local removed = 0
  while true do
    local jobs, bytes = usage()
    if jobs <= max_jobs and bytes <= max_bytes then break end
    local oldest = redis.call('ZRANGE', base .. 'jobs:done', 0, 1)
    local victim = oldest[1]
    if victim == keep then victim = oldest[2] end
    if not victim then break end
    drop(victim)
    removed = removed + 1
  end
  return removed
end

-- Record job `id`, queued for peer `target`; nil, or why not: {'taken'} or {'full', jobs, bytes}
-- (the user's caps are full of what cannot make room: jobs in flight).
-- `overhead`: the bytes a job costs beyond its strings; `waiter`: the replica whose caller waits ('' none).
local function create(id, kind, command, target, now, overhead, payload_bytes, waiter, max_jobs, max_bytes)
  local key = job_key(id)
  if redis.call('EXISTS', key) == 1 then return {'taken'} end
  redis.call('HSET', key, 'kind', kind, 'command', command, 'target', target, 'status', QUEUED, 'created', now,
             'updated', now, 'error', '', 'waiter', waiter, 'payload', payload_bytes,
             'fixed', overhead + #id + #kind + #command + #target)
  redis.call('SADD', base .. 'jobs:open:' .. target, id)
  redis.call('ZADD', base .. 'jobs:all', now, id)
  redis.call('ZADD', base .. 'jobs:queued', now, id)
  redis.call('HINCRBY', base .. 'usage', 'jobs', 1)
  resize(key)
  trim(max_jobs, max_bytes, id)
  local jobs, bytes = usage()
  if jobs > max_jobs or bytes > max_bytes then
    redis.call('SREM', base .. 'jobs:open:' .. target, id)
    drop(id)
    jobs, bytes = usage()
    return {'full', tostring(jobs), tostring(bytes)}
  end
  return nil
end

-- Where a dispatch goes: uuid and its backlog (queued plus handed out, unacknowledged), or nil and
-- the user's peers (the caller names the failure: no peer, unknown target, several peers).
local function resolve(target)
  local peers = base .. 'peers'
  local uuid = nil
  if target ~= '' then
    if redis.call('SISMEMBER', peers, target) == 1 then uuid = target end
  elseif redis.call('SCARD', peers) == 1 then
    uuid = redis.call('SRANDMEMBER', peers)
  end
  if not uuid then return nil, redis.call('SMEMBERS', peers) end
  return uuid, redis.call('LLEN', base .. 'q:' .. uuid) + redis.call('LLEN', base .. 'ul:' .. uuid)
end

-- Queue job `id`'s payload on peer `uuid` and wake its open poll: over the channel when another
-- replica holds it. Returns false when the peer is gone, 1 when `replica` holds the poll (the
-- caller wakes it there), 0 otherwise.
local function queue(uuid, id, payload, replica, channel, user)
  local peer = base .. 'peer:' .. uuid
  if redis.call('EXISTS', peer) == 0 then return false end
  redis.call('HSET', base .. 'qp:' .. uuid, id, payload)
  redis.call('RPUSH', base .. 'q:' .. uuid, id)
  local poller = redis.call('HGET', peer, 'poller') or ''
  if poller == replica then return 1 end
  if poller ~= '' then redis.call('PUBLISH', channel, cjson.encode({'wake', user, uuid})) end
  return 0
end

-- Add an event (its JSON) to the user's `_message_bus` feed, waking watchers on every replica.
local function event(json, kept, channel, user)
  local seq = redis.call('INCR', base .. 'evseq')
  redis.call('XADD', base .. 'ev', 'MAXLEN', '~', kept, seq .. '-0', 'e', json)
  redis.call('PUBLISH', channel, cjson.encode({'event', user}))
  return seq
end

-- Whether a caller waits on job `key` on a replica other than `replica` (then it is told over the channel).
local function waited_elsewhere(key, replica)
  local w = redis.call('HMGET', key, 'waiter', 'watched')
  return (w[1] and w[1] ~= '' and w[1] ~= replica) or w[2] == '1'
end

-- The status of job `key` if moving it to a status above all of `lower` (a list) is a step forward.
local function forward(key, lower)
  local cur = redis.call('HGET', key, 'status')
  if not cur then return nil end
  for _, s in ipairs(lower) do
    if s == cur then return cur end
  end
  return nil
end

-- Job `id` moves to `status` (a step forward: see `forward`). `how`: '0' no result, '1' the result
-- text is `text`, '2' it was staged at job:<id>:result:new. `err`: nil keeps the error. When the
-- job `ended`, its payload stops counting, it leaves its peer's open jobs and the user's calls in
-- flight, and it joins retention.
local function settle(id, status, now, how, text, fmt, err, scene, ended, max_jobs, max_bytes)
  local key = job_key(id)
  redis.call('HSET', key, 'status', status, 'updated', now)
  redis.call('ZREM', base .. 'jobs:queued', id)
  if how == '1' then
    redis.call('SET', key .. ':result', text)
    redis.call('HSET', key, 'rlen', #text, 'format', fmt)
  elseif how == '2' then
    redis.call('RENAME', key .. ':result:new', key .. ':result')
    redis.call('HSET', key, 'rlen', redis.call('STRLEN', key .. ':result'), 'format', fmt)
  end
  if err then redis.call('HSET', key, 'error', err, 'elen', #err) end
  if scene ~= '' then redis.call('HSET', key, 'scene', scene, 'slen', #scene) end
  if ended then
    redis.call('HSET', key, 'payload', 0)
    redis.call('SREM', base .. 'jobs:open:' .. redis.call('HGET', key, 'target'), id)
    redis.call('ZADD', base .. 'jobs:done', now, id)
    redis.call('ZREM', base .. 'calls', id)
  end
  resize(key)
  if ended then trim(max_jobs, max_bytes, id) end
end

-- A job's progress: `fraction` ('' none) and `message` (nil none).
local function note_progress(id, fraction, message, now, max_jobs, max_bytes)
  local key = job_key(id)
  if fraction ~= '' then redis.call('HSET', key, 'progress', fraction) else redis.call('HDEL', key, 'progress') end
  if message then
    redis.call('HSET', key, 'message', message, 'mlen', #message)
  else
    redis.call('HDEL', key, 'message', 'mlen')
  end
  redis.call('HSET', key, 'updated', now)
  resize(key)
  trim(max_jobs, max_bytes, id)
end
