-- A conference bound to a SIP/MCU conference: each web member calls into it.
-- The password is kept as given: digest authentication needs it.
CREATE TABLE mcu_bindings (
    conf_id VARCHAR(32) NOT NULL PRIMARY KEY,
    uri VARCHAR(512) NOT NULL,
    transport VARCHAR(8) NOT NULL,
    outbound_proxy VARCHAR(512) NULL,
    username VARCHAR(128) NULL,
    password VARCHAR(128) NULL,
    codecs VARCHAR(128) NOT NULL,
    created_at BIGINT NOT NULL
) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
