-- 0008: notices, as SQLite's migration 20 to customers (issue "close the loop"). A case keeps where
-- its notice schedule stands; each report of a case records the notice
-- that told the customer of it (NULL: not told yet). Notices go through
-- the outbox like replies: the row names its case, and carries the text
-- and the CSV written when it was queued. The case's history and the
-- customer's answers have tables of their own.
ALTER TABLE cases ADD COLUMN notices BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN first_notice_at TEXT;
ALTER TABLE cases ADD COLUMN last_notice_at TEXT;
ALTER TABLE cases ADD COLUMN reminded_at TEXT;
ALTER TABLE cases ADD COLUMN escalated_at TEXT;
ALTER TABLE cases ADD COLUMN answered_at TEXT;
ALTER TABLE cases ADD COLUMN closed_by TEXT;
-- What was decided about the content (DSA Art. 17), and when the customer
-- was sent the statement of reasons.
ALTER TABLE cases ADD COLUMN decision TEXT;
ALTER TABLE cases ADD COLUMN decision_ground TEXT;
ALTER TABLE cases ADD COLUMN reasons_sent_at TEXT;
CREATE INDEX cases_active ON cases (status) WHERE customer IS NOT NULL AND status <> 'resolved';

ALTER TABLE report_cases ADD COLUMN notice_id BIGINT;
CREATE INDEX report_cases_untold ON report_cases (case_id, report_id) WHERE notice_id IS NULL;

ALTER TABLE outbox ADD COLUMN case_id BIGINT REFERENCES cases (id);
ALTER TABLE outbox ADD COLUMN subject TEXT;
ALTER TABLE outbox ADD COLUMN body TEXT;
ALTER TABLE outbox ADD COLUMN attachment TEXT;
CREATE INDEX outbox_case ON outbox (case_id) WHERE case_id IS NOT NULL;

CREATE TABLE case_events (
    id       BIGSERIAL PRIMARY KEY,
    case_id  BIGINT NOT NULL REFERENCES cases (id),
    at       TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    detail   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX case_events_case ON case_events (case_id, id);

CREATE TABLE case_statements (
    id          BIGSERIAL PRIMARY KEY,
    case_id     BIGINT NOT NULL REFERENCES cases (id),
    raw_id      BIGINT NOT NULL UNIQUE REFERENCES raw_messages (id),
    received_at TEXT    NOT NULL,
    sender      TEXT,
    subject     TEXT,
    status      TEXT    NOT NULL,
    text        TEXT    NOT NULL
);
CREATE INDEX case_statements_case ON case_statements (case_id, id);
