-- The nodes of the gateway pool, sharing this database: each one refreshes
-- its row (heartbeat_at) every few seconds; a row not refreshed in time is a
-- dead node.
CREATE TABLE nodes (
    node_id TEXT PRIMARY KEY NOT NULL,
    gateway TEXT NOT NULL,
    members BIGINT NOT NULL,
    rooms BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
-- Which node serves a conference's media and WebSockets.
CREATE TABLE conference_nodes (
    conf_id TEXT PRIMARY KEY NOT NULL,
    node_id TEXT NOT NULL,
    allocated_at BIGINT NOT NULL
);
