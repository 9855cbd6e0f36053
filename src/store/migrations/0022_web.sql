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
