-- Folded security events (API.md §7): repeats of a flood-prone kind from one client within
-- the folding window join the first event's row. `repeats` counts the occurrences after the
-- first (0 for an event that was not repeated); `last_at` is the time of the last one folded
-- in (Unix ms), NULL while none was.
ALTER TABLE security_events ADD COLUMN repeats BIGINT NOT NULL DEFAULT 0;
ALTER TABLE security_events ADD COLUMN last_at BIGINT;
