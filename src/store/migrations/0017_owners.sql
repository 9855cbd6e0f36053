-- 0017: customers and what they hold (issue "whose is it"): netblocks and
-- domains, each valid for a time so a reassigned address keeps its
-- history. An import ends an assignment (valid_until), never deletes it.
CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    reference   TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    emails      TEXT    NOT NULL,                -- JSON array
    language    TEXT    NOT NULL,
    policy      TEXT,
    enabled     INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT    NOT NULL
);
CREATE TABLE assignments (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    netblock    TEXT,                            -- 203.0.113.0/24 or first-last
    domain      TEXT,                            -- lower case, no trailing dot
    valid_from  TEXT,                            -- RFC 3339; NULL: since ever
    valid_until TEXT,                            -- RFC 3339; NULL: still
    source      TEXT    NOT NULL,                -- what it was imported from
    created_at  TEXT    NOT NULL,
    CHECK ((netblock IS NULL) <> (domain IS NULL))
);
CREATE INDEX assignments_source ON assignments (source);
CREATE INDEX assignments_customer ON assignments (customer_id);
