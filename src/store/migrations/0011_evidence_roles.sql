-- 0011: the role of each evidence row's address (source, target, reporter,
-- range, hop, other). Rows from before were all read as sources.
ALTER TABLE evidence ADD COLUMN role TEXT NOT NULL DEFAULT 'source';
