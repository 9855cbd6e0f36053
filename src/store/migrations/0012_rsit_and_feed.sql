-- 0012: each report's RSIT pair (ENISA's Reference Security Incident
-- Taxonomy, as IntelMQ names it) and the known feed that sent it. Rows from
-- before get the pair their type maps to when read.
ALTER TABLE reports ADD COLUMN rsit_taxonomy TEXT;
ALTER TABLE reports ADD COLUMN rsit_type TEXT;
ALTER TABLE reports ADD COLUMN feed TEXT;
CREATE INDEX reports_rsit_type ON reports (rsit_type);
