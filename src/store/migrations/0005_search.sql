-- 0005: full-text search over what reports say (subject and body text),
-- for `reports list --search`. An external-content-free FTS5 table keyed by
-- report id; rows are written with the report and removed by prune.

CREATE VIRTUAL TABLE report_text USING fts5 (subject, body, tokenize = 'unicode61 remove_diacritics 2');

-- Reports stored before this version: their subjects (bodies need reprocess).
INSERT INTO report_text (rowid, subject, body) SELECT id, coalesce(subject, ''), '' FROM reports;
