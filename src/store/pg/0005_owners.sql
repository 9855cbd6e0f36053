-- 0005: customers and what they hold, as SQLite's migration 17. Lookups
-- run on an index built in memory from these rows (owners::Index).
CREATE TABLE customers (
    id          BIGSERIAL PRIMARY KEY,
    reference   TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    emails      TEXT    NOT NULL,
    language    TEXT    NOT NULL,
    policy      TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at  TEXT    NOT NULL
);
CREATE TABLE assignments (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT  NOT NULL REFERENCES customers (id),
    netblock    TEXT,
    domain      TEXT,
    valid_from  TEXT,
    valid_until TEXT,
    source      TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    CHECK ((netblock IS NULL) <> (domain IS NULL))
);
CREATE INDEX assignments_source ON assignments (source);
CREATE INDEX assignments_customer ON assignments (customer_id);
