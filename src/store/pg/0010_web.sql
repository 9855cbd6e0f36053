-- 0010: the web desk, as SQLite's migration 22: operators and their
-- sessions (found by the SHA-256 of the cookie).
CREATE TABLE operators (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled_at   TEXT,
    created_at    TEXT NOT NULL
);
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    operator   TEXT NOT NULL REFERENCES operators (name),
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL
);
CREATE INDEX web_sessions_operator ON web_sessions (operator);

-- Reports per hour and type, kept by a trigger (see SQLite's migration 22).
CREATE TABLE report_hours (
    hour       TEXT   NOT NULL,
    abuse_type TEXT   NOT NULL,
    n          BIGINT NOT NULL,
    PRIMARY KEY (hour, abuse_type)
);
INSERT INTO report_hours (hour, abuse_type, n)
    SELECT substr(received_at, 1, 13), abuse_type, count(*) FROM reports GROUP BY 1, 2;
CREATE FUNCTION report_hours_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.abuse_type = NEW.abuse_type
        AND OLD.received_at = NEW.received_at THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE report_hours SET n = n - 1
            WHERE hour = substr(OLD.received_at, 1, 13) AND abuse_type = OLD.abuse_type;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO report_hours (hour, abuse_type, n)
            VALUES (substr(NEW.received_at, 1, 13), NEW.abuse_type, 1)
            ON CONFLICT (hour, abuse_type) DO UPDATE SET n = report_hours.n + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER report_hours AFTER INSERT OR DELETE OR UPDATE OF abuse_type, received_at
    ON reports FOR EACH ROW EXECUTE FUNCTION report_hours_count();

CREATE INDEX reports_open ON reports (id) WHERE status = 'open';
