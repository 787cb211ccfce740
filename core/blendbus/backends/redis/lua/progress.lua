-- A job's progress (Jobs.set_progress).
-- KEYS[1]: the job's hash
-- ARGV: base, job id, fraction ('' none), '1' if a message, message, now, max jobs, max bytes
-- Returns 1, or 0 when there is no such job
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
note_progress(ARGV[2], ARGV[3], ARGV[4] == '1' and ARGV[5] or nil, ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
return 1
