-- 0022: the web desk (issue "web desk"). Operators' accounts (Argon2id
-- password hashes in PHC form) and their sessions, shared by every console
-- process on the store. A session is found by the SHA-256 of its cookie:
-- the store never holds a token that would log anyone in.
CREATE TABLE operators (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL,        -- viewer | agent | admin
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

-- Reports per hour and type, kept by triggers as reports are stored,
-- reclassified or deleted: the console's charts and total read a few
-- thousand rows of this, never the reports themselves.
CREATE TABLE report_hours (
    hour       TEXT    NOT NULL,        -- YYYY-MM-DDTHH (UTC)
    abuse_type TEXT    NOT NULL,
    n          INTEGER NOT NULL,
    PRIMARY KEY (hour, abuse_type)
);
INSERT INTO report_hours (hour, abuse_type, n)
    SELECT substr(received_at, 1, 13), abuse_type, count(*) FROM reports GROUP BY 1, 2;
CREATE TRIGGER report_hours_insert AFTER INSERT ON reports BEGIN
    INSERT INTO report_hours (hour, abuse_type, n)
        VALUES (substr(NEW.received_at, 1, 13), NEW.abuse_type, 1)
        ON CONFLICT (hour, abuse_type) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER report_hours_delete AFTER DELETE ON reports BEGIN
    UPDATE report_hours SET n = n - 1
        WHERE hour = substr(OLD.received_at, 1, 13) AND abuse_type = OLD.abuse_type;
END;
CREATE TRIGGER report_hours_update AFTER UPDATE OF abuse_type, received_at ON reports
    WHEN OLD.abuse_type <> NEW.abuse_type OR OLD.received_at <> NEW.received_at BEGIN
    UPDATE report_hours SET n = n - 1
        WHERE hour = substr(OLD.received_at, 1, 13) AND abuse_type = OLD.abuse_type;
    INSERT INTO report_hours (hour, abuse_type, n)
        VALUES (substr(NEW.received_at, 1, 13), NEW.abuse_type, 1)
        ON CONFLICT (hour, abuse_type) DO UPDATE SET n = n + 1;
END;

-- The dashboard's count of open reports, from an index of them alone.
CREATE INDEX reports_open ON reports (id) WHERE status = 'open';
