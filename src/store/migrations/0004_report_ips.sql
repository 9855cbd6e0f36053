-- 0004: the addresses each report names, keyed for range search (--ip CIDR).
-- ip_key is the 16-byte address (IPv4 as ::ffff:a.b.c.d), so a network is
-- one BETWEEN over the primary key. Filled for existing reports in Rust
-- (store::backfill_report_ips) right after this file runs.

CREATE TABLE report_ips (
    ip_key     BLOB    NOT NULL,
    report_id  INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    PRIMARY KEY (ip_key, report_id)
) WITHOUT ROWID;
CREATE INDEX report_ips_report ON report_ips (report_id);
