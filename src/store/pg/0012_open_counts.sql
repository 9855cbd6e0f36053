-- 0012: the open reports per hour and type, as SQLite's migration 24.
ALTER TABLE report_hours ADD COLUMN n_open BIGINT NOT NULL DEFAULT 0;
LOCK TABLE reports IN SHARE MODE;
DELETE FROM report_hours;
INSERT INTO report_hours (hour, abuse_type, n, n_open)
    SELECT substr(received_at, 1, 13), abuse_type, count(*), count(*) FILTER (WHERE status = 'open')
    FROM reports GROUP BY 1, 2;
CREATE OR REPLACE FUNCTION report_hours_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.abuse_type = NEW.abuse_type
        AND OLD.received_at = NEW.received_at AND OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE report_hours
            SET n = n - 1, n_open = n_open - CASE WHEN OLD.status = 'open' THEN 1 ELSE 0 END
            WHERE hour = substr(OLD.received_at, 1, 13) AND abuse_type = OLD.abuse_type;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO report_hours (hour, abuse_type, n, n_open)
            VALUES (substr(NEW.received_at, 1, 13), NEW.abuse_type, 1,
                    CASE WHEN NEW.status = 'open' THEN 1 ELSE 0 END)
            ON CONFLICT (hour, abuse_type) DO UPDATE
            SET n = report_hours.n + 1, n_open = report_hours.n_open + excluded.n_open;
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER report_hours ON reports;
CREATE TRIGGER report_hours AFTER INSERT OR DELETE OR UPDATE OF abuse_type, received_at, status
    ON reports FOR EACH ROW EXECUTE FUNCTION report_hours_count();
