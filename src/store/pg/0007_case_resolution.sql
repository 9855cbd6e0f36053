-- 0007: resolving a case, as SQLite's migration 19 (`cases resolve ID --note TEXT`): when, and the
-- operator's note. A resolved case takes no new report; the next one about
-- the same customer and kind opens a new case.
ALTER TABLE cases ADD COLUMN resolved_at TEXT;
ALTER TABLE cases ADD COLUMN note TEXT;
