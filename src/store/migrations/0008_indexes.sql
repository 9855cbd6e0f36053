-- 0008: indexes for queries that scanned the whole outbox, which grows by a
-- row per report.
-- Held replies: the reply sender looks for them every round; without this,
-- that look was a scan inside a write transaction, holding the lock the SMTP
-- commits need.
CREATE INDEX outbox_held ON outbox (id) WHERE state = 'held';
-- A report's replies: the next reply's number is counted on every queued
-- reply, `reports show` lists them, and deleting a report cascades to them.
CREATE INDEX outbox_report ON outbox (report_id);
-- `cases list`: the most recently active cases first.
CREATE INDEX cases_last_at ON cases (last_at);
