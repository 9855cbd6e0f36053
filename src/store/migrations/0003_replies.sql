-- 0003: replies to reporters (a transactional outbox), report status and history.

ALTER TABLE reports ADD COLUMN status TEXT NOT NULL DEFAULT 'open';   -- open | resolved
ALTER TABLE reports ADD COLUMN resolved_at TEXT;
ALTER TABLE reports ADD COLUMN follow_up_of INTEGER REFERENCES reports (id);  -- merged into that report

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    report_id        INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL,      -- ack | needs_info | concluded
    recipient        TEXT    NOT NULL,
    message_id       TEXT    NOT NULL UNIQUE, -- ours: the idempotency key of the send
    note             TEXT,                  -- the operator's note (concluded)
    state            TEXT    NOT NULL,      -- held | pending | sent | failed | discarded
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,                  -- RFC 3339, UTC
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    sent_at          TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_recipient_created ON outbox (recipient, created_at);

CREATE TABLE report_events (
    id         INTEGER PRIMARY KEY,
    report_id  INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    at         TEXT    NOT NULL,
    kind       TEXT    NOT NULL,            -- received | classified | reply | sent | send_failed | resolved
    detail     TEXT
);
CREATE INDEX report_events_report ON report_events (report_id);
