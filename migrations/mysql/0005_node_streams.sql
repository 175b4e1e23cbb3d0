-- A node's load counts the media streams it carries (received and sent),
-- next to its members and conferences.
ALTER TABLE nodes ADD COLUMN streams BIGINT NOT NULL DEFAULT 0;
