//! The bulk format: one event per row, `IP address, ISO date-time, log line`.
//!
//! Real files vary: a header row or none (detected), `,` `;` tab or `|`
//! (sniffed), a UTF-8 BOM, quoted fields holding the delimiter, CRLF, IPv6,
//! blank and malformed rows, and other column orders named by a header
//! (`ip,port,timestamp`, `src_ip,dst_ip,src_port,dst_port`, AbuseIPDB's
//! `IP,Categories,ReportDate,Comment`). Every good row becomes a log row; bad
//! rows are counted and named in a warning, never fatal.

use super::text::{self, parse_ip};
use super::{Evidence, Format, Kind, Row};
use crate::parse::Attachment;
use chrono::{DateTime, Utc};

/// Malformed row numbers named in the warning.
const BAD_ROWS_NAMED: usize = 5;

pub fn looks_like_csv(a: &Attachment) -> bool {
    matches!(
        a.content_type.as_str(),
        "text/csv"
            | "text/comma-separated-values"
            | "text/tab-separated-values"
            | "application/csv"
    ) || matches!(a.extension().as_deref(), Some("csv" | "tsv"))
}

pub fn extract_attachment(a: &Attachment, received_at: DateTime<Utc>, ev: &mut Evidence) {
    let origin = super::describe(&a.origin, a.name.as_deref());
    parse(&a.text(), &origin, received_at, ev);
}

/// Finds a CSV block pasted into a body (two or more rows whose first field
/// is an address, possibly under a header), parses it, and returns the body
/// without it so the generic scanner does not count those lines twice.
pub fn extract_inline(
    body: &str,
    origin: &str,
    received_at: DateTime<Utc>,
    ev: &mut Evidence,
) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let is_row = |l: &str| {
        let l = l.trim();
        let Some(delim) = [',', ';', '\t']
            .into_iter()
            .find(|d| l.matches(*d).count() >= 2)
        else {
            return false;
        };
        l.split(delim)
            .next()
            .and_then(|f| parse_ip(f.trim_matches('"')))
            .is_some()
    };
    let Some(first) = lines.iter().position(|l| is_row(l)) else {
        return body.to_owned();
    };
    let mut end = first;
    while end < lines.len()
        && (is_row(lines[end])
            || lines[end].trim().is_empty() && end + 1 < lines.len() && is_row(lines[end + 1]))
    {
        end += 1;
    }
    if end - first < 2 {
        return body.to_owned();
    }
    // A header line right above the block belongs to it.
    let start = if first > 0 && has_header_names(lines[first - 1]) {
        first - 1
    } else {
        first
    };
    let block = lines[start..end].join("\n");
    parse(&block, &format!("{origin} (inline CSV)"), received_at, ev);
    super::without_lines(&lines, start, end)
}

/// Which field holds what.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Columns {
    source: usize,
    target: Option<usize>,
    source_port: Option<usize>,
    target_port: Option<usize>,
    time: Option<usize>,
    line: Option<usize>,
    /// Other named columns kept in the row's line (`categories=18,22`).
    extra: Vec<(usize, String)>,
}

#[derive(Clone, Copy)]
enum Role {
    Source,
    Target,
    SourcePort,
    TargetPort,
    Time,
    Line,
}

fn role(name: &str) -> Option<Role> {
    let n: String = name
        .trim()
        .trim_matches('"')
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    Some(match n.as_str() {
        "ip" | "ipaddress" | "srcip" | "sourceip" | "source" | "src" | "attackerip" | "addr"
        | "address" | "offender" | "sourceaddress" | "host" => Role::Source,
        "dstip" | "destinationip" | "destination" | "dst" | "target" | "targetip" | "destip"
        | "victim" | "destinationaddress" => Role::Target,
        "srcport" | "sourceport" | "sport" | "spt" => Role::SourcePort,
        "port" | "dstport" | "destinationport" | "dport" | "dpt" | "targetport" => Role::TargetPort,
        "timestamp" | "date" | "datetime" | "time" | "reportdate" | "firstseen" | "lastseen"
        | "eventtime" | "when" | "utc" | "isodate" | "datetimeutc" => Role::Time,
        "log" | "logline" | "line" | "message" | "comment" | "evidence" | "details"
        | "description" | "raw" | "networklogline" | "logentry" => Role::Line,
        _ => return None,
    })
}

fn has_header_names(line: &str) -> bool {
    let fields: Vec<&str> = line.split([',', ';', '\t', '|']).collect();
    fields.iter().all(|f| parse_ip(f).is_none())
        && fields.iter().any(|f| matches!(role(f), Some(Role::Source)))
}

fn sniff_delimiter(text: &str) -> u8 {
    let sample: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(10)
        .collect();
    let mut best = (b',', 0usize);
    for delim in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = sample.iter().map(|l| count_unquoted(l, delim)).collect();
        let score = counts.iter().filter(|&&c| c > 0).count();
        if score > best.1 {
            best = (delim, score);
        }
    }
    best.0
}

fn count_unquoted(line: &str, delim: u8) -> usize {
    let mut quoted = false;
    line.bytes()
        .filter(|&b| {
            if b == b'"' {
                quoted = !quoted;
            }
            b == delim && !quoted
        })
        .count()
}

fn header_columns(fields: &[String]) -> Option<Columns> {
    if fields.iter().any(|f| parse_ip(f).is_some()) {
        return None;
    }
    let mut cols = Columns::default();
    let mut source = None;
    for (i, f) in fields.iter().enumerate() {
        match role(f) {
            Some(Role::Source) if source.is_none() => source = Some(i),
            Some(Role::Target) if cols.target.is_none() => cols.target = Some(i),
            Some(Role::SourcePort) if cols.source_port.is_none() => cols.source_port = Some(i),
            Some(Role::TargetPort) if cols.target_port.is_none() => cols.target_port = Some(i),
            Some(Role::Time) if cols.time.is_none() => cols.time = Some(i),
            Some(Role::Line) if cols.line.is_none() => cols.line = Some(i),
            _ => {
                let name = f.trim().to_ascii_lowercase();
                if !name.is_empty() {
                    cols.extra.push((i, name));
                }
            }
        }
    }
    cols.source = source?;
    Some(cols)
}

/// Without a header: the first field that is an address is the source, the
/// first that is a time is the time, the rest is the log line.
fn inferred_columns(fields: &[String]) -> Option<Columns> {
    let source = fields.iter().position(|f| parse_ip(f).is_some())?;
    let time = fields.iter().position(|f| text::parse_iso(f).is_some());
    let line = (0..fields.len())
        .filter(|i| *i != source && Some(*i) != time)
        .max_by_key(|i| fields[*i].len());
    Some(Columns {
        source,
        time,
        line,
        ..Columns::default()
    })
}

fn parse(text: &str, origin: &str, received_at: DateTime<Utc>, ev: &mut Evidence) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = sniff_delimiter(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut columns: Option<Columns> = None;
    let (mut good, mut bad) = (0u64, Vec::new());
    let mut bad_count = 0u64;
    let mut record = ::csv::StringRecord::new();
    let mut row_number = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(_) => {
                row_number += 1;
                bad_count += 1;
                if bad.len() < BAD_ROWS_NAMED {
                    bad.push(row_number);
                }
                continue;
            }
        }
        row_number += 1;
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let fields: Vec<String> = record.iter().map(str::to_owned).collect();
        if columns.is_none() {
            if let Some(cols) = header_columns(&fields) {
                columns = Some(cols);
                continue;
            }
            columns = inferred_columns(&fields);
        }
        let Some(cols) = &columns else {
            bad_count += 1;
            if bad.len() < BAD_ROWS_NAMED {
                bad.push(row_number);
            }
            continue;
        };
        match row(&fields, cols, origin, row_number, received_at) {
            Some(r) => {
                good += 1;
                ev.push(r);
            }
            None => {
                bad_count += 1;
                if bad.len() < BAD_ROWS_NAMED {
                    bad.push(row_number);
                }
            }
        }
    }
    if good > 0 || bad_count > 0 {
        ev.formats.insert(Format::Csv);
    }
    if bad_count > 0 {
        let named: Vec<String> = bad.iter().map(usize::to_string).collect();
        let more = if bad_count as usize > bad.len() {
            ", …"
        } else {
            ""
        };
        ev.warnings.push(format!(
            "csv: {origin}: {bad_count} malformed rows skipped (records {}{more})",
            named.join(", ")
        ));
    }
}

fn row(
    fields: &[String],
    cols: &Columns,
    origin: &str,
    n: usize,
    received_at: DateTime<Utc>,
) -> Option<Row> {
    let get = |i: Option<usize>| {
        i.and_then(|i| fields.get(i))
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    };
    let source = parse_ip(get(Some(cols.source))?)?;
    // The log line is the last column in the bulk format: fields after it are
    // pieces of a log line that held the delimiter unquoted.
    let mut line = match cols.line {
        Some(i) if i + 1 == fields.len() || i >= cols.source.max(cols.time.unwrap_or(0)) => {
            fields.get(i..).map(|f| f.join(", ")).unwrap_or_default()
        }
        Some(i) => fields.get(i).cloned().unwrap_or_default(),
        None => String::new(),
    };
    for (i, name) in &cols.extra {
        if let Some(v) = get(Some(*i)) {
            line.push_str(&format!(" [{name}={v}]"));
        }
    }
    let column_time = get(cols.time).and_then(|t| {
        text::parse_iso(t)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .or_else(|| text::timestamp(t, received_at))
    });
    // The time column, when there is one, spares a search of the log line.
    let facts = match column_time {
        Some(_) => text::scan_addresses(&line),
        None => text::scan_line(&line, received_at),
    };
    let occurred_at = column_time.or(facts.timestamp.clone());
    let port = |i: Option<usize>| {
        get(i)
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0)
    };
    let target_ip = get(cols.target)
        .and_then(parse_ip)
        .or(facts.target_ip.filter(|ip| *ip != source));
    let mut row = Row::new(Kind::LogRow, format!("{origin} record {n}")).with_line(&line);
    row.source_ip = Some(source);
    row.target_ip = target_ip;
    row.source_port = port(cols.source_port).or(facts.source_port);
    row.target_port = port(cols.target_port).or(facts.target_port);
    row.occurred_at = occurred_at;
    row.url = facts.urls.first().cloned();
    Some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Evidence {
        let mut ev = Evidence::default();
        parse(text, "t", Utc::now(), &mut ev);
        ev
    }

    #[test]
    fn headerless_rows_with_bom_crlf_and_quoted_delimiters() {
        let ev = rows("\u{feff}192.0.2.1,2026-11-26T08:00:00Z,\"sshd[1]: Failed password for root from 192.0.2.1 port 4242 ssh2, again\"\r\n\r\n2001:db8::7,2026-11-26 08:00:01,kernel: SRC=2001:db8::7 DST=2001:db8::1 DPT=443\r\nnot an ip,2026-11-26,x\r\n");
        assert_eq!(ev.rows.len(), 2, "{:?}", ev.rows);
        assert_eq!(
            ev.rows[0].occurred_at.as_deref(),
            Some("2026-11-26T08:00:00Z")
        );
        assert!(ev.rows[0].line.as_deref().unwrap().ends_with("ssh2, again"));
        assert_eq!(ev.rows[1].target_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ev.rows[1].target_port, Some(443));
        assert_eq!(ev.warnings.len(), 1, "{:?}", ev.warnings);
        assert!(
            ev.warnings[0].contains("1 malformed rows skipped (records 3)"),
            "{:?}",
            ev.warnings
        );
    }

    #[test]
    fn header_names_columns_in_any_order_and_delimiter_is_sniffed() {
        let ev = rows("timestamp;dst_port;src_ip;dst_ip\n2026-11-26T08:00:00+01:00;22;203.0.113.5;198.51.100.9\n");
        let r = &ev.rows[0];
        assert_eq!(r.source_ip, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(r.target_ip, Some("198.51.100.9".parse().unwrap()));
        assert_eq!(r.target_port, Some(22));
        assert_eq!(r.occurred_at.as_deref(), Some("2026-11-26T07:00:00Z"));
    }

    #[test]
    fn abuseipdb_export() {
        let ev = rows("IP,Categories,ReportDate,Comment\n192.0.2.44,\"18,22\",2026-11-25T10:00:00+00:00,SSH brute force\n");
        let r = &ev.rows[0];
        assert_eq!(r.source_ip, Some("192.0.2.44".parse().unwrap()));
        assert_eq!(
            r.line.as_deref(),
            Some("SSH brute force [categories=18,22]")
        );
    }

    #[test]
    fn tab_separated() {
        let ev = rows("192.0.2.1\t2026-11-26T08:00:00Z\tUFW BLOCK SRC=192.0.2.1 DST=198.51.100.2 DPT=23\n192.0.2.2\t2026-11-26T08:00:01Z\tUFW BLOCK\n");
        assert_eq!(ev.rows.len(), 2);
        assert_eq!(ev.rows[0].target_port, Some(23));
    }
}
