-- The PostgreSQL store, schema version 1: the SQLite store's tables at its
-- schema 13, for several daemons sharing one database. Times are RFC 3339
-- UTC text with microseconds, as in SQLite (they sort as times); lists are
-- JSON text. What PostgreSQL does better it does here: addresses are
-- `inet` (GiST-indexed, so `--ip` takes any network), the search text is a
-- `tsvector` (GIN-indexed), and a message being processed is claimed by one
-- node (`claimed_by`, `claimed_until`) with FOR UPDATE SKIP LOCKED.
CREATE TABLE raw_messages (
    id             BIGSERIAL PRIMARY KEY,
    received_at    TEXT    NOT NULL,
    origin         TEXT    NOT NULL,
    peer_ip        TEXT,
    helo           TEXT,
    mail_from      TEXT,
    rcpt_to        TEXT    NOT NULL,
    message_id     TEXT,
    dedup_key      BYTEA   NOT NULL UNIQUE,
    size_bytes     BIGINT  NOT NULL,
    bytes          BYTEA   NOT NULL,
    status         TEXT    NOT NULL DEFAULT 'received',
    error          TEXT,
    auth           TEXT,
    dsn            TEXT,
    claimed_by     TEXT,
    claimed_until  TIMESTAMPTZ
);
CREATE INDEX raw_messages_unprocessed ON raw_messages (id) WHERE status = 'received';
CREATE INDEX raw_messages_status ON raw_messages (status);

CREATE TABLE cases (
    id          BIGSERIAL PRIMARY KEY,
    abuse_type  TEXT    NOT NULL,
    net_key     BYTEA   NOT NULL,
    network     TEXT    NOT NULL,
    first_at    TEXT    NOT NULL,
    last_at     TEXT    NOT NULL,
    reports     BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX cases_lookup ON cases (abuse_type, net_key, last_at);
CREATE INDEX cases_last_at ON cases (last_at);

CREATE TABLE reports (
    id              BIGSERIAL PRIMARY KEY,
    raw_id          BIGINT  NOT NULL UNIQUE REFERENCES raw_messages (id),
    message_id      TEXT,
    received_at     TEXT    NOT NULL,
    reporter        TEXT,
    subject         TEXT,
    abuse_type      TEXT    NOT NULL,
    subtype         TEXT,
    ips             TEXT    NOT NULL,
    urls            TEXT    NOT NULL,
    evidence_rows   BIGINT  NOT NULL,
    missing         TEXT    NOT NULL,
    reply           TEXT    NOT NULL,
    parse_warnings  TEXT    NOT NULL,
    processed_at    TEXT    NOT NULL,
    formats         TEXT    NOT NULL DEFAULT '[]',
    reasons         TEXT    NOT NULL DEFAULT '[]',
    reply_reason    TEXT,
    status          TEXT    NOT NULL DEFAULT 'open',
    resolved_at     TEXT,
    follow_up_of    BIGINT  REFERENCES reports (id),
    case_id         BIGINT  REFERENCES cases (id),
    language        TEXT    NOT NULL DEFAULT 'en',
    auth            TEXT,
    rsit_taxonomy   TEXT,
    rsit_type       TEXT,
    feed            TEXT,
    search          TSVECTOR
);
CREATE INDEX reports_received_at ON reports (received_at);
CREATE INDEX reports_type_received_at ON reports (abuse_type, received_at);
CREATE INDEX reports_reporter ON reports (reporter);
CREATE INDEX reports_breakdown ON reports (abuse_type, subtype, reply, status);
CREATE INDEX reports_case ON reports (case_id);
CREATE INDEX reports_rsit_type ON reports (rsit_type);
CREATE INDEX reports_search ON reports USING GIN (search);

CREATE TABLE evidence (
    id           BIGSERIAL PRIMARY KEY,
    report_id    BIGINT  NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    source_ip    TEXT,
    target_ip    TEXT,
    source_port  INTEGER,
    target_port  INTEGER,
    occurred_at  TEXT,
    url          TEXT,
    line         TEXT,
    origin       TEXT    NOT NULL,
    line_of      BIGINT,
    role         TEXT    NOT NULL DEFAULT 'source'
);
CREATE INDEX evidence_report ON evidence (report_id);

CREATE TABLE report_ips (
    ip         INET    NOT NULL,
    report_id  BIGINT  NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    PRIMARY KEY (ip, report_id)
);
CREATE INDEX report_ips_report ON report_ips (report_id);
CREATE INDEX report_ips_ip ON report_ips USING GIST (ip inet_ops);

CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    report_id        BIGINT  NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL,
    recipient        TEXT    NOT NULL,
    message_id       TEXT    NOT NULL UNIQUE,
    note             TEXT,
    state            TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    sent_at          TEXT,
    recipient_key    TEXT,
    recipient_domain TEXT,
    claimed_by       TEXT,
    claimed_until    TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_held ON outbox (id) WHERE state = 'held';
CREATE INDEX outbox_report ON outbox (report_id);
CREATE INDEX outbox_recipient_key ON outbox (recipient_key, created_at);
CREATE INDEX outbox_recipient_domain ON outbox (recipient_domain, created_at);
CREATE INDEX outbox_created ON outbox (created_at);

CREATE TABLE report_events (
    id         BIGSERIAL PRIMARY KEY,
    report_id  BIGINT  NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    at         TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    detail     TEXT
);
CREATE INDEX report_events_report ON report_events (report_id);

CREATE TABLE installation (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    secret  BYTEA   NOT NULL
);
