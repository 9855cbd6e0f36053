-- 0004: the addresses each report names, keyed for range search (--ip CIDR).
-- ip_key is the 16-byte address (IPv4 as ::ffff:a.b.c.d), so a network is
-- one BETWEEN over the primary key. Filled for existing reports in Rust
-- (store::backfill_report_ips) right after this file runs.

CREATE TABLE report_ips (
    ip_key     BLOB    NOT NULL,
    report_id  INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    net_key    BLOB    NOT NULL,   -- the /24 (IPv4) or /64 (IPv6) prefix, for stats
    PRIMARY KEY (ip_key, report_id)
) WITHOUT ROWID;
CREATE INDEX report_ips_report ON report_ips (report_id);
CREATE INDEX report_ips_net ON report_ips (net_key, report_id);
-- stats: top reporters without a sort.
CREATE INDEX reports_reporter ON reports (reporter);
-- stats: the breakdowns and the processing states from indexes alone.
CREATE INDEX reports_breakdown ON reports (abuse_type, subtype, reply, status);
CREATE INDEX raw_messages_status ON raw_messages (status);
