-- 0002 (SQLite 0014): reports are stored before their sender checks end (issue 20).
-- pending_reply: the reply that waits for them (JSON PendingReply);
-- pending_follow_up: a follow-up whose merge needs them (the draft as JSON,
-- without its evidence rows, which are stored); checks_due_at: when the
-- checks are (re)tried; NULL once they ended.
ALTER TABLE reports ADD COLUMN pending_reply TEXT;
ALTER TABLE reports ADD COLUMN pending_follow_up TEXT;
ALTER TABLE reports ADD COLUMN checks_due_at TEXT;
CREATE INDEX reports_checks_due ON reports (checks_due_at) WHERE checks_due_at IS NOT NULL;
