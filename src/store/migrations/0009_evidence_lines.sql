-- 0009: a log line is stored once per report. Further rows that found an
-- address on the same line point at the row that carries it (line_of), so
-- a long line naming thousands of addresses is not stored thousands of times.

ALTER TABLE evidence ADD COLUMN line_of INTEGER;
