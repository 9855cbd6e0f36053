-- 0021: IMAP intake (issue "mailboxes"). Where `serve` stands in each
-- [[imap]] mailbox: the folder's UIDVALIDITY and the highest UID whose
-- message is committed. A changed UIDVALIDITY starts the folder over
-- (deduplication keeps that harmless).
CREATE TABLE imap_progress (
    mailbox      TEXT    PRIMARY KEY,   -- user@host:port/folder
    uid_validity INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL,
    updated_at   TEXT    NOT NULL
);
