-- Someone waits on the job on a replica that may not be its caller's (Notifier.watch): its end is
-- then announced on the channel whichever replica it lands on.
-- KEYS[1]: the job's hash
-- ARGV: base
-- Returns 1, or 0 when there is no such job
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'watched', '1')
return 1
