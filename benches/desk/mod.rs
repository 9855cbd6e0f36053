//! A large desk for the benches: `n` synthetic reports written straight
//! through SQL into a SQLite store (the pipeline would take hours). Each
//! names two addresses, one in 1% of reports inside 192.0.2.0/24; a subject
//! and a short body, one in 100 mentioning "cryptojacking".

use rusqlite::params;

/// `--reports N` on the command line, else a million.
pub fn reports_arg(args: &[String]) -> i64 {
    args.iter()
        .position(|a| a == "--reports")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// Inserts `n` reports, received over the 30 days before `end`.
pub fn build(path: &std::path::Path, n: i64, end: chrono::DateTime<chrono::Utc>) {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let types = [
        "network_activity",
        "email_abuse",
        "web_content",
        "copyright",
        "unknown",
    ];
    let subtypes = ["brute_force", "port_scan", "dos", "intrusion", "other"];
    let replies = ["ack", "needs_info", "suppressed"];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for chunk in (0..n).collect::<Vec<_>>().chunks(50_000) {
        let tx = conn.transaction().unwrap();
        {
            let mut raw = tx
                .prepare("INSERT INTO raw_messages (id, received_at, origin, rcpt_to, dedup_key, size_bytes, bytes, status)
                          VALUES (?1, ?2, 'smtp', '[]', ?3, 0, x'', 'processed')")
                .unwrap();
            let mut report = tx
                .prepare("INSERT INTO reports (id, raw_id, message_id, received_at, reporter, subject, abuse_type, subtype,
                              ips, urls, evidence_rows, missing, reply, parse_warnings, processed_at,
                              rsit_taxonomy, rsit_type)
                          VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '[]', 2, '[]', ?9, '[]', ?3, 'other', 'other')")
                .unwrap();
            let mut ip = tx
                .prepare("INSERT OR IGNORE INTO report_ips (ip_key, report_id, net_key) VALUES (?1, ?2, ?3)")
                .unwrap();
            let mut text = tx
                .prepare("INSERT INTO report_text (rowid, subject, body) VALUES (?1, ?2, ?3)")
                .unwrap();
            for &id in chunk {
                let r = rand();
                // Oldest first, evenly over the 30 days before `end`.
                let at = (end - chrono::Duration::seconds((n - id) * 30 * 86_400 / n.max(1)))
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&id.to_le_bytes());
                raw.execute(params![id + 1, at, &key[..]]).unwrap();
                let source: std::net::Ipv4Addr = if r % 100 == 0 {
                    [192, 0, 2, (r >> 8) as u8].into()
                } else {
                    [
                        ((r >> 8) % 223 + 1) as u8,
                        (r >> 16) as u8,
                        (r >> 24) as u8,
                        (r >> 32) as u8,
                    ]
                    .into()
                };
                let target: std::net::Ipv4Addr = [198, 51, 100, (r >> 40) as u8].into();
                let t = types[(r % 5) as usize];
                let subject = format!("Abuse report {} from {source}", id + 1);
                let body = if (r >> 12) % 100 == 0 {
                    "our monitoring saw cryptojacking traffic from your customer"
                } else {
                    "failed password for root from the address above, see the log lines"
                };
                report
                    .execute(params![
                        id + 1,
                        format!("bench-{id}@example.net"),
                        at,
                        format!("soc{}@example{}.net", r % 500, r % 7),
                        subject,
                        t,
                        (t == "network_activity").then(|| subtypes[((r >> 3) % 5) as usize]),
                        format!("[\"{source}\",\"{target}\"]"),
                        replies[((r >> 5) % 3) as usize],
                    ])
                    .unwrap();
                for addr in [source, target] {
                    let key = addr.to_ipv6_mapped().octets();
                    ip.execute(params![&key[..], id + 1, &key[..15]]).unwrap();
                }
                text.execute(params![id + 1, subject, body]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}
