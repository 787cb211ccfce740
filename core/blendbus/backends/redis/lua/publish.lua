-- Add an event to the user's `_message_bus` feed (Peers.publish).
-- KEYS[1]: the feed's sequence counter
-- ARGV: base, user, event JSON, events kept, channel
-- Returns the event's sequence number
return event(ARGV[3], ARGV[4], ARGV[5], ARGV[2])
