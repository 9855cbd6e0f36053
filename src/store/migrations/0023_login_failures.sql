-- 0023: failed console logins per client address and per account name, in
-- windows (web::session decides how many a window allows), so that every
-- console process on the store counts the same failures. Windows that ended
-- are deleted as new failures come.
CREATE TABLE login_failures (
    key          TEXT    PRIMARY KEY,   -- addr:IP | name:NAME
    window_start TEXT    NOT NULL,      -- RFC 3339, UTC
    failures     INTEGER NOT NULL
);
CREATE INDEX login_failures_window ON login_failures (window_start);
