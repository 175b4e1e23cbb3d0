-- Conference events with their per-conference sequence numbers, so that a
-- page or a node that reconnects catches up on what it missed. `body` is the
-- event's JSON as sent on the wire and on the bus. Pruned by age.
CREATE TABLE conference_events (
    conf_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (conf_id, seq)
);
CREATE INDEX conference_events_at ON conference_events (at);
