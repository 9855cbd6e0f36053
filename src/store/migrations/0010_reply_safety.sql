-- 0010: sender authentication results, the installation's secret for
-- follow-up tokens, and outbox columns the rate limits count by.
ALTER TABLE raw_messages ADD COLUMN auth TEXT;
ALTER TABLE reports ADD COLUMN auth TEXT;

CREATE TABLE installation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
);
-- SQLite's randomblob() is seeded from the operating system's randomness.
INSERT INTO installation (id, secret) VALUES (1, randomblob(32));

ALTER TABLE outbox ADD COLUMN recipient_key TEXT;
ALTER TABLE outbox ADD COLUMN recipient_domain TEXT;
UPDATE outbox SET recipient_key = lower(recipient),
                  recipient_domain = lower(substr(recipient, instr(recipient, '@') + 1));
CREATE INDEX outbox_recipient_key ON outbox (recipient_key, created_at);
CREATE INDEX outbox_recipient_domain ON outbox (recipient_domain, created_at);
CREATE INDEX outbox_created ON outbox (created_at);
