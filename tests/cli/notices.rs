//! Notices to customers, on both stores, with a clock the test sets
//! (`notices run --now`): digests that list every report once, reminders,
//! escalation by count and by time, closing when idle and reopening, the
//! customer's answer, and "concluded" to the reporters.

use super::db_for;
use super::owners::{fixture, import, ingest_all, open_case};
use crate::util::{abuse_inbox, json, texts, Store};
use chrono::{DateTime, Duration, Utc};
use std::path::{Path, PathBuf};

fn template(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/notices")
            .join(name),
    )
    .unwrap()
}

/// `n` reports, numbered from `first`, each about one address of c-100's
/// 203.0.113.0/24 and `other` (nobody's, or c-100's too).
fn reports_with(dir: &Path, first: usize, n: usize, other: &str) -> Vec<String> {
    let text = template("report.eml");
    (first..first + n)
        .map(|i| {
            let path = dir.join(format!("report-{i}.eml"));
            let ip = format!("203.0.113.{}", 100 + i % 100);
            std::fs::write(
                &path,
                text.replace("{N}", &i.to_string())
                    .replace("{IP}", &ip)
                    .replace("{OTHER}", other),
            )
            .unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect()
}

/// `n` reports about c-100 alone.
fn reports(dir: &Path, first: usize, n: usize) -> Vec<String> {
    reports_with(dir, first, n, "203.0.113.250")
}

/// A config with the notice policy `policy` (its other keys zero).
fn config(dir: &Path, policy: &str) -> PathBuf {
    let policies = dir.join("notices.toml");
    let mut keys = [
        ("digest_minutes", "0"),
        ("repeat_hours", "0"),
        ("remind_hours", "0"),
        ("escalate_after_events", "0"),
        ("escalate_after_hours", "0"),
        ("close_after_days", "0"),
    ];
    for line in policy.lines() {
        let (key, value) = line.split_once(" = ").unwrap();
        keys.iter_mut().find(|(k, _)| *k == key).unwrap().1 = value;
    }
    let lines: Vec<String> = keys.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    std::fs::write(
        &policies,
        format!("[[policy]]\nname = \"default\"\n{}\n", lines.join("\n")),
    )
    .unwrap();
    crate::util::test_config(
        dir,
        "from = \"abuse@example.com\"\n",
        &format!(
            "[notices]\nfile = \"{}\"\nenabled = false\n",
            policies.display()
        ),
    )
}

fn run(db: &str, config: &Path, at: DateTime<Utc>) -> serde_json::Value {
    json(&abuse_inbox(&[
        "notices",
        "run",
        "--config",
        config.to_str().unwrap(),
        "--db",
        db,
        "--now",
        &at.to_rfc3339(),
    ]))
}

/// The customers' notices in the outbox: (kind, recipient, attachment).
fn notices(db: &str) -> Vec<(String, String, Option<String>)> {
    let column = |c: &str| {
        texts(
            Path::new(db),
            &format!("SELECT {c} FROM outbox WHERE case_id IS NOT NULL ORDER BY id"),
        )
    };
    let kinds = column("kind");
    let recipients = column("recipient");
    let attachments = column("attachment");
    kinds
        .into_iter()
        .zip(recipients)
        .zip(attachments)
        .map(|((k, r), a)| (k.unwrap(), r.unwrap(), a))
        .collect()
}

fn case_show(db: &str, case: &str) -> serde_json::Value {
    json(&abuse_inbox(&[
        "cases", "show", case, "--db", db, "--format", "json",
    ]))
}

on_both_stores_sync!(a_thousand_reports_reach_the_customer_in_digests_that_list_each_once);
fn a_thousand_reports_reach_the_customer_in_digests_that_list_each_once(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let config = config(
        dir.path(),
        "digest_minutes = 15\nescalate_after_events = 1000",
    );
    import(&db, &fixture(), &[]);
    let t0 = Utc::now();
    ingest_all(
        &db,
        &config,
        &reports_with(dir.path(), 0, 400, "192.0.2.55"),
    );
    // Inside the digest window: nothing yet.
    let early = run(&db, &config, t0 + Duration::minutes(5));
    assert_eq!(early["notices"], 0, "{early}");
    let first = run(&db, &config, t0 + Duration::minutes(16));
    assert_eq!(
        (first["notices"].as_u64(), first["reports_told"].as_u64()),
        (Some(1), Some(400)),
        "{first}"
    );
    // The same round again (a restart, a second node): nothing repeats.
    let again = run(&db, &config, t0 + Duration::minutes(16));
    assert_eq!(again["reports_told"], 0, "{again}");
    assert_eq!(
        again["notices"].as_u64().unwrap() + again["digests"].as_u64().unwrap(),
        0
    );
    ingest_all(
        &db,
        &config,
        &reports_with(dir.path(), 400, 300, "192.0.2.55"),
    );
    let second = run(&db, &config, t0 + Duration::minutes(32));
    assert_eq!(
        (second["digests"].as_u64(), second["reports_told"].as_u64()),
        (Some(1), Some(300)),
        "{second}"
    );
    ingest_all(
        &db,
        &config,
        &reports_with(dir.path(), 700, 300, "192.0.2.55"),
    );
    // The case now holds 1,000 reports: its policy escalates, once, to
    // the customer's second address.
    let third = run(&db, &config, t0 + Duration::minutes(48));
    assert_eq!(
        (
            third["digests"].as_u64(),
            third["reports_told"].as_u64(),
            third["escalations"].as_u64()
        ),
        (Some(1), Some(300), Some(1)),
        "{third}"
    );
    let sent = notices(&db);
    let kinds: Vec<(&str, &str)> = sent
        .iter()
        .map(|(k, r, _)| (k.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("notice", "abuse@hosting.example"),
            ("digest", "abuse@hosting.example"),
            ("digest", "abuse@hosting.example"),
            ("escalation", "noc@hosting.example"),
        ]
    );
    // Every report is in exactly one notice's CSV, with only the
    // customer's own address (never 192.0.2.55, nobody's).
    let mut listed: Vec<String> = Vec::new();
    for (_, _, csv) in &sent[..3] {
        let csv = csv.as_deref().unwrap();
        for line in csv.lines().skip(1) {
            let fields: Vec<&str> = line.split("\",\"").collect();
            let report = fields[0].trim_start_matches('"').to_owned();
            assert!(fields[2].starts_with("203.0.113.1"), "{line}");
            listed.push(report);
        }
    }
    assert_eq!(listed.len(), 1000);
    listed.sort();
    listed.dedup();
    assert_eq!(listed.len(), 1000, "a report listed twice");
    assert_eq!(sent[3].2, None, "an escalation lists nothing");
    let case = open_case(&db, "c-100");
    let waiting = json(&abuse_inbox(&[
        "cases",
        "list",
        "--awaiting-customer",
        "--db",
        &db,
        "--format",
        "json",
    ]));
    assert_eq!(waiting[0]["id"].to_string(), case, "{waiting}");
    assert_eq!(waiting[0]["notices"], 3);
    let shown = case_show(&db, &case);
    let history: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["notified"; 4], "{shown}");
}

on_both_stores_sync!(silence_reminds_escalates_and_closes_and_a_new_report_reopens);
fn silence_reminds_escalates_and_closes_and_a_new_report_reopens(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let config = config(
        dir.path(),
        "repeat_hours = 24\nremind_hours = 24\nescalate_after_hours = 48\nclose_after_days = 14",
    );
    import(&db, &fixture(), &[]);
    let t0 = Utc::now();
    let report = ingest_all(&db, &config, &reports(dir.path(), 0, 1)).remove(0);
    let at = |hours: i64| t0 + Duration::hours(hours) + Duration::minutes(1);
    assert_eq!(run(&db, &config, at(0))["notices"], 1);
    assert_eq!(run(&db, &config, at(12))["reminders"], 0);
    assert_eq!(run(&db, &config, at(24))["reminders"], 1);
    // One reminder a notice.
    assert_eq!(run(&db, &config, at(30))["reminders"], 0);
    let escalated = run(&db, &config, at(48));
    assert_eq!(escalated["escalations"], 1, "{escalated}");
    assert_eq!(run(&db, &config, at(72))["escalations"], 0);
    let kinds: Vec<String> = notices(&db).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["notice", "reminder", "escalation"]);
    // Idle for 14 days: closed by its policy; the reporter hears
    // "concluded", the customer "closed".
    let closed = run(&db, &config, at(15 * 24));
    assert_eq!(closed["closed"], 1, "{closed}");
    let case = texts(
        Path::new(&db),
        "SELECT id FROM cases WHERE customer = 'c-100'",
    )[0]
    .clone()
    .unwrap();
    let shown = case_show(&db, &case);
    assert_eq!(shown["case"]["status"], "resolved", "{shown}");
    assert_eq!(shown["case"]["closed_by"], "policy");
    assert_eq!(shown["reports"][0]["status"], "resolved");
    let last = notices(&db).pop().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        ("case_closed", "abuse@hosting.example")
    );
    let concluded = texts(
        Path::new(&db),
        &format!(
            "SELECT recipient FROM outbox WHERE kind = 'concluded' AND report_id = {}",
            report["id"]
        ),
    );
    assert_eq!(concluded, [Some("soc@cert.example.org".to_owned())]);
    // Nothing more, ever, for a closed case.
    let after = run(&db, &config, at(40 * 24));
    assert_eq!(after["closed"], 0, "{after}");
    // A new report about the customer opens the case closed by its policy again.
    ingest_all(&db, &config, &reports(dir.path(), 1, 1));
    let reopened = case_show(&db, &case);
    assert_eq!(reopened["case"]["status"], "open", "{reopened}");
    assert_eq!(reopened["case"]["reports"], 2);
    let history: Vec<&str> = reopened["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "notified",
            "notified",
            "notified",
            "auto_closed",
            "notified",
            "reopened"
        ],
        "{reopened}"
    );
}

on_both_stores_sync!(the_customers_answer_lands_on_the_case_and_a_forged_one_is_a_report);
fn the_customers_answer_lands_on_the_case_and_a_forged_one_is_a_report(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let config = config(dir.path(), "remind_hours = 24\nescalate_after_hours = 48");
    import(&db, &fixture(), &[]);
    let t0 = Utc::now();
    ingest_all(&db, &config, &reports(dir.path(), 0, 2));
    assert_eq!(run(&db, &config, t0 + Duration::minutes(1))["notices"], 1);
    let case = open_case(&db, "c-100");
    let subject = texts(
        Path::new(&db),
        "SELECT subject FROM outbox WHERE kind = 'notice'",
    )[0]
    .clone()
    .unwrap();
    let message_id = texts(
        Path::new(&db),
        "SELECT message_id FROM outbox WHERE kind = 'notice'",
    )[0]
    .clone()
    .unwrap();
    // In the customer's language (de), with the case's tag.
    let tag = &subject[..subject.find(']').unwrap() + 1];
    assert!(tag.starts_with(&format!("[case #{case}-")), "{subject}");
    assert!(
        subject.contains("Missbrauchsmeldungen zu Ihrem Netz"),
        "{subject}"
    );
    let reports_before = crate::util::count_rows(Path::new(&db), "reports");

    // A stranger's "answer" with a wrong token is a report of its own.
    let forged = dir.path().join("forged.eml");
    std::fs::write(
        &forged,
        template("answer-forged.eml")
            .replace("{ID}", &case)
            .replace("{N}", "1"),
    )
    .unwrap();
    let out = ingest_all(&db, &config, &[forged.to_str().unwrap().to_owned()]);
    assert!(out[0]["id"].is_i64(), "{}", out[0]);
    assert_eq!(
        crate::util::count_rows(Path::new(&db), "reports"),
        reports_before + 1
    );
    assert_eq!(case_show(&db, &case)["statements"], serde_json::json!([]));

    // The customer's answer: a statement on the case, no report; its first
    // line (German) says it is dealt with.
    let answer = dir.path().join("answer.eml");
    std::fs::write(
        &answer,
        template("answer-resolved.eml")
            .replace("{TAG}", tag)
            .replace("{IN_REPLY_TO}", &message_id)
            .replace("{N}", "1"),
    )
    .unwrap();
    let out = ingest_all(&db, &config, &[answer.to_str().unwrap().to_owned()]);
    assert_eq!(out[0]["answer_to_case"].to_string(), case, "{}", out[0]);
    assert_eq!(
        crate::util::count_rows(Path::new(&db), "reports"),
        reports_before + 1,
        "an answer is no report"
    );
    let shown = case_show(&db, &case);
    assert_eq!(shown["case"]["status"], "customer_resolved", "{shown}");
    let statement = &shown["statements"][0];
    assert_eq!(statement["status"], "resolved");
    assert_eq!(statement["sender"], "abuse@hosting.example");
    assert_eq!(
        statement["text"],
        "Erledigt.\nDie VM des Kunden ist abgeschaltet, das Passwort ist geändert."
    );
    let answered = json(&abuse_inbox(&[
        "cases",
        "list",
        "--customer-answered",
        "--db",
        &db,
        "--format",
        "json",
    ]));
    assert_eq!(answered[0]["id"].to_string(), case);
    let waiting = json(&abuse_inbox(&[
        "cases",
        "list",
        "--awaiting-customer",
        "--db",
        &db,
        "--format",
        "json",
    ]));
    assert_eq!(waiting, serde_json::json!([]));
    // Answered and resolved by them: no reminder, no escalation.
    let later = run(&db, &config, t0 + Duration::hours(72));
    assert_eq!(
        (later["reminders"].as_u64(), later["escalations"].as_u64()),
        (Some(0), Some(0)),
        "{later}"
    );
    // The operator concludes: the reporter hears it once, the customer
    // gets the closed notice once.
    let done = json(&abuse_inbox(&[
        "cases",
        "resolve",
        &case,
        "--note",
        "VM removed",
        "--config",
        config.to_str().unwrap(),
        "--db",
        &db,
    ]));
    assert_eq!(done["customer_told"], true, "{done}");
    assert_eq!(done["case"]["closed_by"], "operator");
    let again = abuse_inbox(&["cases", "resolve", &case, "--db", &db]);
    assert!(again.status.success());
    let kinds: Vec<String> = notices(&db).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(kinds, ["notice", "case_closed"]);
    let concluded = texts(
        Path::new(&db),
        "SELECT recipient FROM outbox WHERE kind = 'concluded' ORDER BY id",
    );
    assert_eq!(
        concluded.len(),
        2,
        "one per report of the case: {concluded:?}"
    );
    // The same answer again (delivered twice): nothing new.
    let out = ingest_all(&db, &config, &[answer.to_str().unwrap().to_owned()]);
    assert!(out[0].is_object());
    assert_eq!(
        case_show(&db, &case)["statements"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

on_both_stores_sync!(a_decision_sends_its_statement_of_reasons_and_the_dsa_figures_count_it);
fn a_decision_sends_its_statement_of_reasons_and_the_dsa_figures_count_it(store: Store) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = db_for(store, &dir) else {
        return;
    };
    let config = config(dir.path(), "digest_minutes = 0");
    import(&db, &fixture(), &[]);
    let since = Utc::now().to_rfc3339();
    let files: Vec<String> = (1..=2)
        .map(|n| {
            let path = dir.path().join(format!("phish-{n}.eml"));
            std::fs::write(
                &path,
                template("phishing.eml").replace("{N}", &n.to_string()),
            )
            .unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect();
    let stored = ingest_all(&db, &config, &files);
    assert_eq!(stored[0]["abuse_type"], "web_content", "{}", stored[0]);
    assert_eq!(stored[0]["ownership"], "owned");
    let case = open_case(&db, "c-100");
    let cfg = config.to_str().unwrap();
    // A restriction needs its ground.
    let refused = abuse_inbox(&[
        "cases",
        "resolve",
        &case,
        "--decision",
        "removed",
        "--db",
        &db,
    ]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--ground"));
    let done = json(&abuse_inbox(&[
        "cases",
        "resolve",
        &case,
        "--decision",
        "removed",
        "--ground",
        "illegal",
        "--note",
        "The page is gone.",
        "--config",
        cfg,
        "--db",
        &db,
    ]));
    assert_eq!(done["case"]["decision"], "removed", "{done}");
    assert_eq!(done["case"]["decision_ground"], "illegal");
    assert!(done["case"]["reasons_sent_at"].is_string(), "{done}");
    // The customer's closing notice is the statement of reasons, in German.
    let body = texts(
        Path::new(&db),
        "SELECT body FROM outbox WHERE kind = 'case_closed'",
    )[0]
    .clone()
    .unwrap();
    for needle in [
        "Der Inhalt wurde entfernt, weil der Inhalt rechtswidrig ist.",
        "Art. 17",
        "Art. 21",
        "The page is gone.",
    ] {
        assert!(body.contains(needle), "{needle}: {body}");
    }
    let figures = json(&abuse_inbox(&[
        "export", "--format", "dsa", "--since", &since, "--db", &db,
    ]));
    assert_eq!(figures["notices"], 2, "{figures}");
    assert_eq!(figures["notices_by_category"]["web_content"], 2);
    assert_eq!(figures["decided"], 2);
    assert_eq!(figures["decisions"]["removed"], 2);
    assert_eq!(figures["grounds"]["illegal"], 2);
    assert_eq!(figures["statements_of_reasons"], 2);
    assert_eq!(figures["share_decided_automatically"], 0.0);
    assert_eq!(figures["pending"], 0);
    // Without a relay the receipts wait (held): none is confirmed yet.
    assert_eq!(figures["receipt_confirmed"], 0);
    let later = json(&abuse_inbox(&[
        "export",
        "--format",
        "dsa",
        "--since",
        "2099-01-01T00:00:00Z",
        "--db",
        &db,
    ]));
    assert_eq!(later["notices"], 0, "{later}");
}
