-- A conference bound to a SIP/MCU conference: each web member calls into it.
-- The password is kept as given: digest authentication needs it.
CREATE TABLE mcu_bindings (
    conf_id TEXT PRIMARY KEY NOT NULL,
    uri TEXT NOT NULL,
    transport TEXT NOT NULL,
    outbound_proxy TEXT,
    username TEXT,
    password TEXT,
    codecs TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
