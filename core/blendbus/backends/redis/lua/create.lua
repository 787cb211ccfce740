-- Record a queued job (Jobs.create).
-- KEYS[1]: the job's hash
-- ARGV: base, job id, kind, command, target, now, overhead, payload bytes, max jobs, max bytes
-- Returns {'ok'} | {'taken'} | {'full', jobs, bytes}
return create(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]), '',
              tonumber(ARGV[9]), tonumber(ARGV[10])) or {'ok'}
