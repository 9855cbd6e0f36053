-- 0011: failed console logins per address and per name, as SQLite's
-- migration 23.
CREATE TABLE login_failures (
    key          TEXT   PRIMARY KEY,
    window_start TEXT   NOT NULL,
    failures     BIGINT NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
