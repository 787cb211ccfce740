-- Move a job forward (Jobs.advance): an atomic compare-and-set on its status.
-- KEYS[1]: the job's hash
-- ARGV: base, job id, status, now, how ('0' no result, '1' inline, '2' staged), result text, format,
--       '1' if an error, error, '1' if the status ends the job, max jobs, max bytes, scene account ('' none),
--       statuses it may move from...
-- Returns 1 if it moved, 0 if not (the job is gone, or already at that status or past it)
local lower = {}
for i = 14, #ARGV do lower[#lower + 1] = ARGV[i] end
if not forward(KEYS[1], lower) then
  redis.call('DEL', KEYS[1] .. ':result:new')
  return 0
end
settle(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8] == '1' and ARGV[9] or nil, ARGV[13],
       ARGV[10] == '1', tonumber(ARGV[11]), tonumber(ARGV[12]))
return 1
