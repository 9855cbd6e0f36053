-- 0002: evidence rows, and the classification's explanation on reports.

ALTER TABLE reports ADD COLUMN formats TEXT NOT NULL DEFAULT '[]';       -- JSON array
ALTER TABLE reports ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]';       -- JSON array
ALTER TABLE reports ADD COLUMN reply_reason TEXT;

CREATE TABLE evidence (
    id           INTEGER PRIMARY KEY,
    report_id    INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,      -- log_row | ip | url | message | feedback | notice
    source_ip    TEXT,
    target_ip    TEXT,
    source_port  INTEGER,
    target_port  INTEGER,
    occurred_at  TEXT,                  -- RFC 3339, UTC
    url          TEXT,
    line         TEXT,
    origin       TEXT    NOT NULL       -- where in the message it was found
);
CREATE INDEX evidence_report ON evidence (report_id);
