-- 0008: held replies found through an index. The reply sender looks for them
-- every round; without it that look was a scan of the whole outbox inside a
-- write transaction, which held the lock the SMTP commits need.
CREATE INDEX outbox_held ON outbox (id) WHERE state = 'held';
