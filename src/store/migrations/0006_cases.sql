-- 0006: cases. Reports of one abuse type about the same source network (/24
-- for IPv4, /64 for IPv6) within a window are one case, handled once.

CREATE TABLE cases (
    id          INTEGER PRIMARY KEY,
    abuse_type  TEXT    NOT NULL,
    net_key     BLOB    NOT NULL,      -- as report_ips.net_key
    network     TEXT    NOT NULL,      -- the same, as text: 192.0.2.0/24
    first_at    TEXT    NOT NULL,
    last_at     TEXT    NOT NULL,
    reports     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cases_lookup ON cases (abuse_type, net_key, last_at);

ALTER TABLE reports ADD COLUMN case_id INTEGER REFERENCES cases (id);
CREATE INDEX reports_case ON reports (case_id);
