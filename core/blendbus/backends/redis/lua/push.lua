-- Queue a payload on a peer and wake its poll (Peers.push).
-- KEYS[1]: the peer's hash
-- ARGV: base, user, uuid, job id, payload, replica, channel
-- Returns false (no such peer) | 1 (this replica holds its poll) | 0
return queue(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[2])
