//! An owners file, read and compared with what is stored.
//!
//! In: the file's text (CSV with a header row, or JSON lines with the same
//! names), the source it stands for, what the store holds, and now. Out:
//! the rows, or every bad row by line; then an [`ImportPlan`] of customers
//! created or changed and assignments created, updated or ended, which the
//! store carries out in one transaction. Importing the same file twice
//! plans nothing; an assignment of the source that the file no longer has
//! is ended (`valid_until` = now), never deleted. Pure.

use super::{domain_key, Assignment, Netblock, Target};
use crate::model::reply::Language;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A customer: who an assignment belongs to and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Customer {
    /// The stable reference the desk's other systems use.
    pub reference: String,
    pub name: String,
    pub emails: Vec<String>,
    pub language: Language,
    /// The notice policy by name (`config/notices.toml`); `None`: the
    /// policy of the report's type.
    pub policy: Option<String>,
    pub enabled: bool,
}

/// One row of an owners file: a customer and one of their assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub customer: Customer,
    pub assignment: Assignment,
}

/// A row that cannot be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: usize,
    pub problem: String,
}

/// The columns a CSV file must name in its header row.
pub const REQUIRED: [&str; 8] = [
    "customer",
    "name",
    "email",
    "language",
    "netblock",
    "domain",
    "valid_from",
    "valid_until",
];

/// How many rows a file may hold (the budget of one import).
pub const MAX_ROWS: usize = 1_000_000;

/// The fields of one row, by column name, before they are checked.
type Fields = HashMap<String, String>;

/// Reads a CSV owners file (header row first; `,` between fields).
///
/// # Errors
/// Every row that cannot be imported, with its line; a missing column or
/// an unreadable file as line 1.
pub fn parse_csv(text: &str) -> Result<Vec<Row>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![at(1, format!("unreadable header: {e}"))]),
    };
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|c| !header.iter().any(|h| h == *c))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(vec![at(
            1,
            format!(
                "the header row lacks {}; it needs {}",
                missing.join(", "),
                REQUIRED.join(",")
            ),
        )]);
    }
    let mut fields = Vec::new();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(at(line, format!("unreadable: {e}")));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != header.len() {
            errors.push(at(
                line,
                format!("{} fields; the header has {}", record.len(), header.len()),
            ));
            continue;
        }
        let row: Fields = header
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_owned))
            .collect();
        fields.push((line, row));
        if fields.len() > MAX_ROWS {
            return Err(vec![at(line, format!("more than {MAX_ROWS} rows"))]);
        }
    }
    rows(fields, errors)
}

/// Reads an owners file of JSON lines: one object a line, with the CSV's
/// names (`email` may be a list).
///
/// # Errors
/// Every line that cannot be imported.
pub fn parse_json_lines(text: &str) -> Result<Vec<Row>, Vec<RowError>> {
    let mut fields = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let object: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(line) {
            Ok(o) => o,
            Err(e) => {
                errors.push(at(n, format!("not a JSON object: {e}")));
                continue;
            }
        };
        let mut row = Fields::new();
        for (key, value) in object {
            let text = match value {
                serde_json::Value::Null => String::new(),
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            row.insert(key.to_ascii_lowercase(), text.trim().to_owned());
        }
        fields.push((n, row));
        if fields.len() > MAX_ROWS {
            return Err(vec![at(n, format!("more than {MAX_ROWS} rows"))]);
        }
    }
    rows(fields, errors)
}

fn at(line: usize, problem: String) -> RowError {
    RowError { line, problem }
}

/// Checks every row; all problems, or all rows.
fn rows(
    fields: Vec<(usize, Fields)>,
    mut errors: Vec<RowError>,
) -> Result<Vec<Row>, Vec<RowError>> {
    let mut rows = Vec::with_capacity(fields.len());
    for (line, f) in fields {
        match row(line, &f) {
            Ok(row) => rows.push(row),
            Err(problem) => errors.push(at(line, problem)),
        }
    }
    // One customer, one description: a file that names a customer twice
    // must say the same of them each time.
    let mut first: HashMap<&str, &Row> = HashMap::new();
    for row in &rows {
        match first.get(row.customer.reference.as_str()) {
            Some(earlier) if earlier.customer != row.customer => errors.push(at(
                row.line,
                format!(
                    "customer {:?} is described differently on line {}",
                    row.customer.reference, earlier.line
                ),
            )),
            Some(_) => {}
            None => {
                first.insert(&row.customer.reference, row);
            }
        }
    }
    let mut seen: HashMap<(&str, &Target, Option<DateTime<Utc>>), usize> = HashMap::new();
    for row in &rows {
        let a = &row.assignment;
        if let Some(earlier) = seen.insert((&a.customer, &a.target, a.valid_from), row.line) {
            errors.push(at(
                row.line,
                format!("the same assignment as line {earlier}"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

fn row(line: usize, f: &Fields) -> Result<Row, String> {
    let get = |name: &str| f.get(name).map(String::as_str).unwrap_or("");
    let reference = get("customer");
    if reference.is_empty() {
        return Err("customer is empty".into());
    }
    if reference.len() > 200 || reference.chars().any(char::is_control) {
        return Err("customer must be at most 200 characters, without control characters".into());
    }
    let emails: Vec<String> = get("email")
        .split([' ', ';', ','])
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = emails.iter().find(|e| {
        e.split_once('@')
            .is_none_or(|(l, d)| l.is_empty() || domain_key(d).is_none())
    }) {
        return Err(format!("email {bad:?} is not an address"));
    }
    let language = match get("language") {
        "" => Language::En,
        code => Language::parse(&code.to_ascii_lowercase())
            .ok_or_else(|| format!("language {code:?} is not one of en, de, es, fr, pt"))?,
    };
    let enabled = match get("enabled").to_ascii_lowercase().as_str() {
        "" | "true" | "yes" | "1" => true,
        "false" | "no" | "0" => false,
        other => return Err(format!("enabled {other:?} is not true or false")),
    };
    let target = match (get("netblock"), get("domain")) {
        (net, "") if !net.is_empty() => Target::Netblock(Netblock::parse(net)?),
        ("", domain) if !domain.is_empty() => Target::Domain(
            domain_key(domain).ok_or_else(|| format!("domain {domain:?} is not a host name"))?,
        ),
        ("", "") => return Err("neither netblock nor domain is filled".into()),
        _ => return Err("both netblock and domain are filled: one assignment a row".into()),
    };
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        match get(name) {
            "" => Ok(None),
            t => DateTime::parse_from_rfc3339(t)
                .map(|t| Some(t.to_utc()))
                .map_err(|_| format!("{name} {t:?} is not an RFC 3339 time")),
        }
    };
    let (valid_from, valid_until) = (time("valid_from")?, time("valid_until")?);
    if let (Some(from), Some(until)) = (valid_from, valid_until) {
        if until <= from {
            return Err("valid_until is not after valid_from".into());
        }
    }
    let customer = Customer {
        reference: reference.to_owned(),
        name: match get("name") {
            "" => reference.to_owned(),
            name => name.to_owned(),
        },
        emails,
        language,
        policy: Some(get("policy"))
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        enabled,
    };
    Ok(Row {
        line,
        assignment: Assignment {
            customer: customer.reference.clone(),
            target,
            valid_from,
            valid_until,
        },
        customer,
    })
}

/// An assignment as stored: its row id and the source it was imported from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: i64,
    pub source: String,
    pub assignment: Assignment,
}

/// What an import changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    pub new_customers: Vec<Customer>,
    pub changed_customers: Vec<Customer>,
    pub new_assignments: Vec<Assignment>,
    /// Stored assignments whose end changes: (id, the new `valid_until`).
    pub updated: Vec<(i64, Option<DateTime<Utc>>)>,
    /// Stored assignments of the source the file no longer has: ended now.
    pub ended: Vec<i64>,
    pub unchanged: usize,
}

/// The counts an import prints (`--format json` names them so).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub customers_created: usize,
    pub customers_updated: usize,
    pub assignments_created: usize,
    pub assignments_updated: usize,
    pub assignments_ended: usize,
    pub assignments_unchanged: usize,
}

impl ImportPlan {
    pub fn counts(&self) -> Counts {
        Counts {
            customers_created: self.new_customers.len(),
            customers_updated: self.changed_customers.len(),
            assignments_created: self.new_assignments.len(),
            assignments_updated: self.updated.len(),
            assignments_ended: self.ended.len(),
            assignments_unchanged: self.unchanged,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.new_customers.is_empty()
            && self.changed_customers.is_empty()
            && self.new_assignments.is_empty()
            && self.updated.is_empty()
            && self.ended.is_empty()
    }
}

/// The plan for importing `rows` as `source` over what is stored, at `now`.
pub fn plan(
    customers: &[Customer],
    stored: &[Stored],
    rows: &[Row],
    source: &str,
    now: DateTime<Utc>,
) -> ImportPlan {
    let mut plan = ImportPlan::default();
    let known: HashMap<&str, &Customer> = customers
        .iter()
        .map(|c| (c.reference.as_str(), c))
        .collect();
    let mut described: BTreeMap<&str, &Customer> = BTreeMap::new();
    for row in rows {
        described
            .entry(row.customer.reference.as_str())
            .or_insert(&row.customer);
    }
    for (reference, customer) in described {
        match known.get(reference) {
            None => plan.new_customers.push(customer.clone()),
            Some(old) if *old != customer => plan.changed_customers.push(customer.clone()),
            Some(_) => {}
        }
    }
    let key = |a: &Assignment| (a.customer.clone(), a.target.clone(), a.valid_from);
    let ours: HashMap<_, &Stored> = stored
        .iter()
        .filter(|s| s.source == source)
        .map(|s| (key(&s.assignment), s))
        .collect();
    let mut matched = HashSet::new();
    for row in rows {
        let a = &row.assignment;
        match ours.get(&key(a)) {
            Some(s) => {
                matched.insert(s.id);
                if s.assignment.valid_until == a.valid_until {
                    plan.unchanged += 1;
                } else {
                    plan.updated.push((s.id, a.valid_until));
                }
            }
            None => plan.new_assignments.push(a.clone()),
        }
    }
    // What the source no longer lists ends now; what has ended already
    // stays as it was.
    let mut ended: Vec<i64> = ours
        .values()
        .filter(|s| !matched.contains(&s.id))
        .filter(|s| s.assignment.valid_until.is_none_or(|until| until > now))
        .map(|s| s.id)
        .collect();
    ended.sort_unstable();
    plan.ended = ended;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\u{feff}customer,name,email,language,netblock,domain,valid_from,valid_until
c-1,Example Hosting,abuse@hosting.example; noc@hosting.example,de,203.0.113.0/24,,,
c-1,Example Hosting,abuse@hosting.example; noc@hosting.example,de,,shop.example.co.uk,,
c-2,Other,abuse@other.example,en,2001:db8::/48,,2026-01-01T00:00:00Z,
";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z")
            .unwrap()
            .to_utc()
    }

    /// What the store would hold after carrying out `plan` (ids from 1).
    fn apply(stored: &mut Vec<Stored>, customers: &mut Vec<Customer>, plan: &ImportPlan) {
        customers.extend(plan.new_customers.iter().cloned());
        for c in &plan.changed_customers {
            if let Some(old) = customers.iter_mut().find(|o| o.reference == c.reference) {
                *old = c.clone();
            }
        }
        for a in &plan.new_assignments {
            stored.push(Stored {
                id: stored.len() as i64 + 1,
                source: "file".into(),
                assignment: a.clone(),
            });
        }
        for (id, until) in &plan.updated {
            stored[*id as usize - 1].assignment.valid_until = *until;
        }
        for id in &plan.ended {
            stored[*id as usize - 1].assignment.valid_until = Some(now());
        }
    }

    #[test]
    fn a_file_reads_into_customers_and_assignments() {
        let rows = parse_csv(FILE).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 2);
        assert_eq!(
            rows[0].customer.emails,
            ["abuse@hosting.example", "noc@hosting.example"]
        );
        assert_eq!(rows[0].customer.language, Language::De);
        assert_eq!(
            rows[1].assignment.target,
            Target::Domain("shop.example.co.uk".into())
        );
        assert!(rows[2].assignment.valid_from.is_some());
    }

    #[test]
    fn importing_twice_changes_nothing_and_a_row_left_out_is_ended_not_deleted() {
        let (mut stored, mut customers) = (Vec::new(), Vec::new());
        let rows = parse_csv(FILE).unwrap();
        let first = plan(&customers, &stored, &rows, "file", now());
        assert_eq!(
            first.counts(),
            Counts {
                customers_created: 2,
                assignments_created: 3,
                ..Counts::default()
            }
        );
        apply(&mut stored, &mut customers, &first);
        let again = plan(&customers, &stored, &rows, "file", now());
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(again.unchanged, 3);
        // The domain row is gone from the file: its assignment ends now.
        let fewer: Vec<Row> = rows.iter().filter(|r| r.line != 3).cloned().collect();
        let third = plan(&customers, &stored, &fewer, "file", now());
        assert_eq!(third.ended, vec![2]);
        apply(&mut stored, &mut customers, &third);
        assert_eq!(stored.len(), 3, "nothing is deleted");
        // Ended once, it stays ended.
        assert!(plan(&customers, &stored, &fewer, "file", now()).is_empty());
        // Another source's assignments are not this file's to end.
        assert!(plan(&customers, &stored, &[], "other", now())
            .ended
            .is_empty());
    }

    #[test]
    fn a_changed_customer_and_a_new_end_are_updates() {
        let (mut stored, mut customers) = (Vec::new(), Vec::new());
        let rows = parse_csv(FILE).unwrap();
        let first = plan(&customers, &stored, &rows, "file", now());
        apply(&mut stored, &mut customers, &first);
        let changed = FILE.replace("c-2,Other,", "c-2,Other Ltd,").replace(
            "2026-01-01T00:00:00Z,\n",
            "2026-01-01T00:00:00Z,2027-01-01T00:00:00Z\n",
        );
        let p = plan(
            &customers,
            &stored,
            &parse_csv(&changed).unwrap(),
            "file",
            now(),
        );
        assert_eq!(p.changed_customers.len(), 1);
        assert_eq!(p.changed_customers[0].name, "Other Ltd");
        assert_eq!(p.updated.len(), 1);
        assert_eq!(p.updated[0].0, 3);
    }

    #[test]
    fn every_bad_row_is_named_by_its_line_and_nothing_is_half_read() {
        let bad = "customer,name,email,language,netblock,domain,valid_from,valid_until
,x,a@b.example,en,192.0.2.0/24,,,
c,x,not-an-address,en,192.0.2.0/24,,,
c,x,a@b.example,xx,192.0.2.0/24,,,
c,x,a@b.example,en,192.0.2.1/24,,,
c,x,a@b.example,en,,,,
c,x,a@b.example,en,192.0.2.0/24,example.com,,
c,x,a@b.example,en,,bad host!,,
c,x,a@b.example,en,192.0.2.0/24,,yesterday,
c,x,a@b.example,en,192.0.2.0/24,,2026-02-01T00:00:00Z,2026-01-01T00:00:00Z
c,x,a@b.example,en,192.0.2.0/25,,,
c,y,a@b.example,en,192.0.2.128/25,,,
c,x,a@b.example,en,192.0.2.0/25,,,
c,x
";
        let errors = parse_csv(bad).unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(
            lines,
            [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14],
            "{errors:#?}"
        );
        assert!(errors[10].problem.contains("same assignment as line 11"));
        assert!(errors[9]
            .problem
            .contains("described differently on line 11"));
        let header = parse_csv("customer,netblock\nc,192.0.2.0/24\n").unwrap_err();
        assert_eq!(header.len(), 1);
        assert!(
            header[0].problem.contains("lacks name, email"),
            "{header:?}"
        );
    }

    #[test]
    fn json_lines_use_the_same_names() {
        let text = r#"{"customer":"c-1","name":"Example","email":["a@hosting.example"],"language":"fr","netblock":"198.51.100.0/24"}

{"customer":"c-1","name":"Example","email":"a@hosting.example","language":"fr","domain":"Example.ORG."}
not json
"#;
        let errors = parse_json_lines(text).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 4);
        let rows = parse_json_lines(&text.replace("not json\n", "")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1].assignment.target,
            Target::Domain("example.org".into())
        );
    }
}
