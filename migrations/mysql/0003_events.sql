-- Conference events with their per-conference sequence numbers, so that a
-- page or a node that reconnects catches up on what it missed. `body` is the
-- event's JSON as sent on the wire and on the bus. Pruned by age.
CREATE TABLE conference_events (
    conf_id VARCHAR(32) NOT NULL,
    seq BIGINT NOT NULL,
    event_id VARCHAR(64) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    body MEDIUMTEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (conf_id, seq),
    INDEX conference_events_at (at)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
