-- Times are epoch milliseconds (BIGINT), as on the wire. utf8mb4 throughout:
-- display names are Chinese as often as not.

CREATE TABLE settings (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE conferences (
    conf_id VARCHAR(32) NOT NULL PRIMARY KEY,
    name VARCHAR(512) NOT NULL,
    password VARCHAR(32) NOT NULL,
    chair_user_id VARCHAR(64) NULL,
    starts_at BIGINT NULL,
    ends_at BIGINT NULL,
    ended_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    INDEX conferences_password (password)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE users (
    user_id VARCHAR(64) NOT NULL PRIMARY KEY,
    name VARCHAR(512) NOT NULL,
    sip_account VARCHAR(32) NOT NULL UNIQUE,
    mobile VARCHAR(64) NULL,
    email VARCHAR(320) NULL,
    avatar VARCHAR(2048) NULL,
    role VARCHAR(16) NOT NULL,
    conf_id VARCHAR(32) NULL,
    secret_hash VARCHAR(255) NULL,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    active_at BIGINT NOT NULL,
    INDEX users_conf_id (conf_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE refresh_tokens (
    token_hash VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    INDEX refresh_tokens_user_id (user_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE join_links (
    code VARCHAR(64) NOT NULL PRIMARY KEY,
    conf_id VARCHAR(32) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    revoked_at BIGINT NULL,
    INDEX join_links_conf_id (conf_id)
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
