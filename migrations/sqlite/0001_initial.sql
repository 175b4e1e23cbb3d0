-- Times are epoch milliseconds (BIGINT), as on the wire.

CREATE TABLE settings (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE conferences (
    conf_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    password TEXT NOT NULL,
    chair_user_id TEXT,
    starts_at BIGINT,
    ends_at BIGINT,
    ended_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX conferences_password ON conferences (password);

CREATE TABLE users (
    user_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    sip_account TEXT NOT NULL UNIQUE,
    mobile TEXT,
    email TEXT,
    avatar TEXT,
    role TEXT NOT NULL,
    conf_id TEXT,
    secret_hash TEXT,
    created_at BIGINT NOT NULL,
    modified_at BIGINT NOT NULL,
    active_at BIGINT NOT NULL
);
CREATE INDEX users_conf_id ON users (conf_id);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);

CREATE TABLE join_links (
    code TEXT PRIMARY KEY NOT NULL,
    conf_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX join_links_conf_id ON join_links (conf_id);
