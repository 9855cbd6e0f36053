-- 0009: IMAP intake, as SQLite's migration 21 (issue "mailboxes"): where
-- `serve` stands in each [[imap]] mailbox.
CREATE TABLE imap_progress (
    mailbox      TEXT   PRIMARY KEY,
    uid_validity BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL,
    updated_at   TEXT   NOT NULL
);
