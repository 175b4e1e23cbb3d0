-- The nodes of the gateway pool, sharing this database: each one refreshes
-- its row (heartbeat_at) every few seconds; a row not refreshed in time is a
-- dead node.
CREATE TABLE nodes (
    node_id VARCHAR(128) NOT NULL PRIMARY KEY,
    gateway VARCHAR(512) NOT NULL,
    members BIGINT NOT NULL,
    rooms BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
-- Which node serves a conference's media and WebSockets.
CREATE TABLE conference_nodes (
    conf_id VARCHAR(32) NOT NULL PRIMARY KEY,
    node_id VARCHAR(128) NOT NULL,
    allocated_at BIGINT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
