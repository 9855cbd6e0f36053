-- 0006: routing, as SQLite's migration 18 (issue "whose is it"). Each report records whose its
-- offenders are (owners: JSON list of {looked, value, customer, matched,
-- by, at, time_from}) and what they say together (ownership); the
-- customers it names are indexed for `reports list --customer`. Cases
-- group by (customer, abuse type) and stay open until resolved; a report
-- about two customers is in two cases (report_cases). Each import is
-- logged: its row id is the version the routing index is built from.
ALTER TABLE reports ADD COLUMN owners TEXT NOT NULL DEFAULT '[]';
ALTER TABLE reports ADD COLUMN ownership TEXT NOT NULL DEFAULT 'unrouted';
CREATE INDEX reports_ownership ON reports (ownership, id);
CREATE TABLE report_customers (
    customer    TEXT    NOT NULL,
    report_id   BIGINT  NOT NULL REFERENCES reports (id),
    PRIMARY KEY (customer, report_id)
);
CREATE INDEX report_customers_report ON report_customers (report_id);

ALTER TABLE cases ADD COLUMN customer TEXT;
ALTER TABLE cases ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
CREATE INDEX cases_customer ON cases (customer, abuse_type, status);
CREATE TABLE report_cases (
    case_id     BIGINT  NOT NULL REFERENCES cases (id),
    report_id   BIGINT  NOT NULL REFERENCES reports (id),
    PRIMARY KEY (case_id, report_id)
);
CREATE INDEX report_cases_report ON report_cases (report_id);
INSERT INTO report_cases (case_id, report_id)
    SELECT case_id, id FROM reports WHERE case_id IS NOT NULL;

CREATE TABLE owner_imports (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT    NOT NULL,
    imported_at TEXT    NOT NULL,
    created     BIGINT  NOT NULL,
    updated     BIGINT  NOT NULL,
    ended       BIGINT  NOT NULL
);
