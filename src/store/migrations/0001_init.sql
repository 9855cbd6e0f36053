-- 0001: raw messages as they arrived, and the reports made from them.

CREATE TABLE raw_messages (
    id           INTEGER PRIMARY KEY,
    received_at  TEXT    NOT NULL,               -- RFC 3339, UTC
    origin       TEXT    NOT NULL,               -- smtp | ingest
    peer_ip      TEXT,
    helo         TEXT,
    mail_from    TEXT,                           -- '' = null sender <>, NULL = unknown
    rcpt_to      TEXT    NOT NULL,               -- JSON array of addresses
    message_id   TEXT,
    dedup_key    BLOB    NOT NULL UNIQUE,        -- SHA-256, see store::raw::dedup_key
    size_bytes   INTEGER NOT NULL,
    bytes        BLOB    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'received', -- received | processed | failed
    error        TEXT
);
CREATE INDEX raw_messages_unprocessed ON raw_messages (id) WHERE status = 'received';

CREATE TABLE reports (
    id              INTEGER PRIMARY KEY,
    raw_id          INTEGER NOT NULL UNIQUE REFERENCES raw_messages (id),
    message_id      TEXT,
    received_at     TEXT    NOT NULL,
    reporter        TEXT,
    subject         TEXT,
    abuse_type      TEXT    NOT NULL,
    subtype         TEXT,
    ips             TEXT    NOT NULL,            -- JSON array
    urls            TEXT    NOT NULL,            -- JSON array
    evidence_rows   INTEGER NOT NULL,
    missing         TEXT    NOT NULL,            -- JSON array
    reply           TEXT    NOT NULL,
    parse_warnings  TEXT    NOT NULL,            -- JSON array
    processed_at    TEXT    NOT NULL
);
CREATE INDEX reports_received_at ON reports (received_at);
CREATE INDEX reports_type_received_at ON reports (abuse_type, received_at);
