-- 0007: the language the reporter wrote in (ISO 639-1), which replies use.
-- Reports stored before it are answered in English, as they were.
ALTER TABLE reports ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
