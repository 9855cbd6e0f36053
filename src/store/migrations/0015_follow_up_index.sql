-- 0015: which reports took in a follow-up is read from the follow-ups'
-- own rows (`follow_up_of`), not from history events (a refused follow-up
-- writes one too): reprocess asks it once per message.
CREATE INDEX IF NOT EXISTS reports_follow_up_of ON reports (follow_up_of)
    WHERE follow_up_of IS NOT NULL;
