//! The operators' console over real HTTP, on both stores: log in, the
//! security headers on every answer, filters by CIDR and words, keyset
//! paging, a report's roles, resolving with the CSRF token (and every way
//! of doing it without one refused), a viewer who cannot act, the login
//! limiter, logout. `browser` drives the same pages in Chromium.

use crate::util::{abuse_inbox_stdin, Smtp, Store, TestServer};
use abuse_inbox::config::Config;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

mod browser;

/// One HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request over a fresh connection (`Connection: close`), read to the
/// end: what a browser sends, nothing more.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// Adds an operator through the CLI, the password on standard input.
pub fn add_user(db: &Path, name: &str, role: &str, password: &str) {
    let out = abuse_inbox_stdin(
        &[
            "users",
            "add",
            name,
            "--role",
            role,
            "--db",
            db.to_str().unwrap(),
        ],
        Some(format!("{password}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Logs in; the session cookie (`desk_session=…`).
pub fn log_in(addr: SocketAddr, name: &str, password: &str) -> String {
    let answer = http(
        addr,
        "POST",
        "/login",
        &[],
        &format!("name={name}&password={password}"),
    );
    assert_eq!(answer.status, 303, "{}", answer.body);
    let cookie = answer.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token a page carries in its forms.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with the token")
        + 19;
    page[at..at + 64].to_owned()
}

/// A console on `store` with the fixtures `files` delivered and processed.
pub async fn console_with(store: Store, files: &[&str]) -> Option<TestServer> {
    console_configured(store, Config::default(), files).await
}

/// The same, with `config` (its console listens on port 0).
pub async fn console_configured(
    store: Store,
    mut config: Config,
    files: &[&str],
) -> Option<TestServer> {
    config.web.listen = "127.0.0.1:0".into();
    let server = TestServer::on(store, config).await?;
    let addr = server.addr;
    let db = server.db_path();
    let files: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let (mut smtp, _) = Smtp::connect(addr);
        smtp.expect("EHLO test.example", "250");
        for file in &files {
            let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
            let reply = smtp.send_message("sender@example.net", "abuse@example.com", &bytes);
            assert!(reply.starts_with("250"), "{file}: {reply}");
        }
        crate::util::wait_processed(&db);
    })
    .await
    .unwrap();
    Some(server)
}

const FIXTURES: &[&str] = &[
    "fixtures/eml/csv/020-csv-basic-sshd.eml",
    "fixtures/eml/web/030-web-phishing-html-only.eml",
    "fixtures/eml/network/105-traceroute-included.eml",
    "fixtures/console/hostile-markup.eml",
];

const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

fn assert_secure(answer: &Answer, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(answer.header(name), Some(*value), "{what}: {name}");
    }
}

async fn the_console_shows_filters_and_acts_only_with_its_token(store: Store) {
    let Some(server) = console_with(store, FIXTURES).await else {
        return;
    };
    let web = server.web_addr().expect("the console listens");
    let db = server.db_path();
    tokio::task::spawn_blocking(move || {
        add_user(&db, "ana", "agent", "ana-password-1");
        add_user(&db, "vic", "viewer", "vic-password-1");
        // Short passwords and taken names are refused.
        let out = abuse_inbox_stdin(
            &["users", "add", "eve", "--role", "admin", "--db", db.to_str().unwrap()],
            Some(b"short\n"),
        );
        assert!(!out.status.success());
        let out = abuse_inbox_stdin(
            &["users", "add", "ana", "--role", "admin", "--db", db.to_str().unwrap()],
            Some(b"another-password\n"),
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("already an operator"));

        // Nothing without a session; the headers on every answer.
        let answer = http(web, "GET", "/", &[], "");
        assert_eq!((answer.status, answer.header("location")), (303, Some("/login")));
        assert_secure(&answer, "redirect");
        let login = http(web, "GET", "/login", &[], "");
        assert_secure(&login, "login page");
        assert_secure(&http(web, "GET", "/no/such/page", &[], ""), "404");
        let wrong = http(web, "POST", "/login", &[], "name=ana&password=wrong");
        assert_eq!(wrong.status, 401);
        assert!(wrong.header("set-cookie").is_none());
        // A forged cookie is no session.
        let forged = format!("desk_session={}", "a".repeat(64));
        assert_eq!(http(web, "GET", "/reports", &[("Cookie", &forged)], "").status, 303);

        let ana = log_in(web, "ana", "ana-password-1");
        let dashboard = http(web, "GET", "/", &[("Cookie", &ana)], "");
        assert_eq!(dashboard.status, 200);
        assert_secure(&dashboard, "dashboard");
        assert!(dashboard.body.contains("<svg") && dashboard.body.contains("Reports per hour"));

        // Filters: a CIDR, words, a type; a bad CIDR is said, not a 500.
        let ids = |page: &str| -> Vec<i64> {
            page.match_indices("href=\"/reports/")
                .filter_map(|(at, _)| {
                    page[at + 15..].split('"').next().and_then(|s| s.parse().ok())
                })
                .collect()
        };
        let all = http(web, "GET", "/reports", &[("Cookie", &ana)], "");
        let every = ids(&all.body);
        assert_eq!(every.len(), 4, "{}", all.body);
        let by_cidr = http(web, "GET", "/reports?ip=192.0.2.0%2F24", &[("Cookie", &ana)], "");
        assert!(!ids(&by_cidr.body).is_empty());
        let hostile: i64 = crate::util::texts(&db, "SELECT id FROM reports WHERE reporter LIKE '%hostile-reports%'")[0]
            .clone()
            .unwrap()
            .parse()
            .unwrap();
        let by_words = http(web, "GET", "/reports?q=phishing", &[("Cookie", &ana)], "");
        assert!(ids(&by_words.body).contains(&hostile), "{}", by_words.body);
        let bad = http(web, "GET", "/reports?ip=not-a-net", &[("Cookie", &ana)], "");
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("not an address or a network"));
        // Keyset paging: only older reports after `before`.
        let newest = *every.iter().max().unwrap();
        let older = http(web, "GET", &format!("/reports?before={newest}"), &[("Cookie", &ana)], "");
        assert!(ids(&older.body).iter().all(|id| *id < newest) && ids(&older.body).len() == 3);

        // The hostile report: every stranger's string escaped, never markup.
        let page = http(web, "GET", &format!("/reports/{hostile}"), &[("Cookie", &ana)], "");
        assert_eq!(page.status, 200);
        assert_secure(&page, "report page");
        let ours = "<script src=\"/static/desk.js\" defer></script>";
        assert_eq!(page.body.matches("<script").count(), 1, "only our own script");
        let body = page.body.replace(ours, "");
        for live in ["<script", "<img", "<svg", "<iframe", "onerror=\"", "href=\"javascript:", "href=\"data:", "\u{202e}", "\u{1b}"] {
            assert!(!body.contains(live), "{live:?} reached the page as markup");
        }
        assert!(page.body.contains("&lt;script&gt;"));
        assert!(page.body.contains("class=\"role-source\""), "roles shown");
        let raw = http(web, "GET", &format!("/reports/{hostile}/raw"), &[("Cookie", &ana)], "");
        assert_eq!(raw.header("content-type"), Some("application/octet-stream"));
        assert!(raw.header("content-disposition").unwrap().starts_with("attachment"));

        // Acting: without the token, with another session's, from another
        // origin, as a viewer — all refused, and nothing changes.
        let token = csrf_of(&page.body);
        let resolve = format!("/reports/{hostile}/resolve");
        let status = || {
            crate::util::texts(&db, &format!("SELECT status FROM reports WHERE id = {hostile}"))[0]
                .clone()
                .unwrap()
        };
        assert_eq!(http(web, "POST", &resolve, &[("Cookie", &ana)], "note=x").status, 403);
        let vic = log_in(web, "vic", "vic-password-1");
        let vic_page = http(web, "GET", &format!("/reports/{hostile}"), &[("Cookie", &vic)], "");
        assert!(!vic_page.body.contains("id=\"resolve\""), "a viewer sees no Resolve button");
        let vic_token = csrf_of(&vic_page.body);
        assert_eq!(http(web, "POST", &resolve, &[("Cookie", &ana)], &format!("csrf={vic_token}")).status, 403);
        assert_eq!(http(web, "POST", &resolve, &[("Cookie", &vic)], &format!("csrf={vic_token}")).status, 403);
        assert_eq!(
            http(web, "POST", &resolve, &[("Cookie", &ana), ("Origin", "http://evil.example")], &format!("csrf={token}")).status,
            403
        );
        assert_eq!(
            http(web, "POST", &resolve, &[("Cookie", &ana), ("Sec-Fetch-Site", "cross-site")], &format!("csrf={token}")).status,
            403
        );
        // A stolen token without the cookie acts on nothing either.
        assert_eq!(http(web, "POST", &resolve, &[], &format!("csrf={token}")).status, 303);
        assert_eq!(status(), "open");
        let done = http(
            web,
            "POST",
            &resolve,
            &[("Cookie", &ana), ("Origin", &format!("http://{web}")), ("Sec-Fetch-Site", "same-origin")],
            &format!("csrf={token}&note=taken+down"),
        );
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(status(), "resolved");
        let history = crate::util::texts(
            &db,
            &format!("SELECT detail FROM report_events WHERE report_id = {hostile} AND kind = 'resolved'"),
        );
        assert_eq!(history, vec![Some("by ana: taken down".to_owned())]);

        // The outbox: held replies (no relay here), one discarded by the
        // agent; the viewer has no button and is refused.
        let replies = http(web, "GET", "/replies", &[("Cookie", &ana)], "");
        assert_eq!(replies.status, 200);
        let held = crate::util::texts(&db, "SELECT id FROM outbox WHERE state = 'held' ORDER BY id");
        let first = held[0].clone().unwrap();
        let discard = format!("/replies/{first}/discard");
        assert!(replies.body.contains(&discard), "{}", replies.body);
        let vic_replies = http(web, "GET", "/replies", &[("Cookie", &vic)], "");
        assert!(!vic_replies.body.contains(&discard));
        assert_eq!(http(web, "POST", &discard, &[("Cookie", &vic)], &format!("csrf={vic_token}")).status, 403);
        let token = csrf_of(&replies.body);
        // Without a relay a release could not go out: refused, saying so.
        let release = http(web, "POST", &format!("/replies/{first}/release"), &[("Cookie", &ana)], &format!("csrf={token}"));
        assert_eq!(release.status, 409);
        assert!(release.body.contains("reply.relay_host"), "{}", release.body);
        assert_eq!(http(web, "POST", &format!("/replies/{first}/explode"), &[("Cookie", &ana)], &format!("csrf={token}")).status, 404);
        assert_eq!(http(web, "POST", &discard, &[("Cookie", &ana)], &format!("csrf={token}")).status, 303);
        let state = crate::util::texts(&db, &format!("SELECT state FROM outbox WHERE id = {first}"));
        assert_eq!(state, vec![Some("discarded".to_owned())]);
        let history = crate::util::texts(&db, "SELECT detail FROM report_events WHERE detail LIKE 'reply % discarded by %'");
        assert_eq!(history, vec![Some(format!("reply {first} discarded by ana"))]);
        assert_eq!(http(web, "POST", &discard, &[("Cookie", &ana)], &format!("csrf={token}")).status, 409);

        // Messages as they arrived: a processed one can be neither retried
        // nor discarded; the cases page lists the open cases.
        let raw = http(web, "GET", "/raw?status=processed", &[("Cookie", &ana)], "");
        assert_eq!(raw.status, 200);
        assert_eq!(raw.body.matches("<tr><td>").count(), 4, "{}", raw.body);
        let some_raw = crate::util::texts(&db, "SELECT min(id) FROM raw_messages")[0].clone().unwrap();
        for action in ["retry", "discard"] {
            let answer = http(web, "POST", &format!("/raw/{some_raw}/{action}"), &[("Cookie", &ana)], &format!("csrf={token}"));
            assert_eq!(answer.status, 409, "{action}");
        }
        let cases = http(web, "GET", "/cases", &[("Cookie", &ana)], "");
        assert_eq!(cases.status, 200);
        assert!(cases.body.contains("192.0.2.0/24"), "{}", cases.body);
        // Resolving a case: refused to a viewer, done by the agent with a
        // decision and its ground, which the case keeps.
        let case = crate::util::texts(&db, "SELECT min(id) FROM cases WHERE status = 'open'")[0].clone().unwrap();
        let resolve_case = format!("/cases/{case}/resolve");
        assert!(cases.body.contains(&resolve_case));
        assert!(!http(web, "GET", "/cases", &[("Cookie", &vic)], "").body.contains(&resolve_case));
        assert_eq!(http(web, "POST", &resolve_case, &[("Cookie", &vic)], &format!("csrf={vic_token}")).status, 403);
        let bad = http(web, "POST", &resolve_case, &[("Cookie", &ana)], &format!("csrf={token}&decision=obliterated"));
        assert_eq!(bad.status, 400);
        let done = http(
            web,
            "POST",
            &resolve_case,
            &[("Cookie", &ana)],
            &format!("csrf={token}&note=customer+cleaned+up&decision=removed&ground=terms"),
        );
        assert_eq!(done.status, 303, "{}", done.body);
        let kept = crate::util::texts(
            &db,
            &format!("SELECT status || ' ' || decision || ' ' || decision_ground || ' ' || note FROM cases WHERE id = {case}"),
        );
        assert_eq!(kept, vec![Some("resolved removed terms by ana: customer cleaned up".to_owned())]);

        // Paging the outbox and the cases: 50 a page, every row once, the
        // copies that share one `last_at` ordered by id.
        crate::util::execute(
            &db,
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
             INSERT INTO outbox (report_id, kind, recipient, message_id, state, created_at)
             SELECT (SELECT min(id) FROM reports), 'ack', 'paged@example.net', 'paged-' || i || '@test', 'held', '2026-12-01T00:00:00Z' FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
             INSERT INTO cases (abuse_type, net_key, network, first_at, last_at, reports)
             SELECT c.abuse_type, c.net_key, c.network, c.first_at, '2026-12-01T00:00:00Z', 0
             FROM cases c, n WHERE c.id = (SELECT min(id) FROM cases)",
        );
        for (first, table, filter) in [
            ("/replies?state=held", "outbox", "state = 'held'"),
            ("/cases?status=open", "cases", "status = 'open'"),
        ] {
            let mut seen: Vec<String> = Vec::new();
            let mut path = first.to_owned();
            for _ in 0..10 {
                let page = http(web, "GET", &path, &[("Cookie", &ana)], "");
                assert_eq!(page.status, 200, "{path}");
                let rows: Vec<String> = page.body.split("<tr><td>").skip(1).map(|r| r.split('<').next().unwrap().to_owned()).collect();
                assert!(rows.len() <= 50, "{path}: {} rows", rows.len());
                seen.extend(rows);
                match page.body.split("id=\"next\" rel=\"next\" href=\"").nth(1) {
                    Some(next) => path = next.split('"').next().unwrap().replace("&amp;", "&"),
                    None => break,
                }
            }
            let expected = crate::util::texts(&db, &format!("SELECT CAST(id AS TEXT) FROM {table} WHERE {filter}"))
                .into_iter()
                .map(Option::unwrap)
                .collect::<Vec<_>>();
            assert!(expected.len() > 60, "{table}");
            let (mut sorted, mut sorted_seen) = (expected.clone(), seen.clone());
            sorted.sort();
            sorted_seen.sort();
            sorted_seen.dedup();
            assert_eq!(sorted_seen.len(), seen.len(), "{table}: a row on two pages");
            assert_eq!(sorted_seen, sorted, "{table}: every row once");
        }
        assert_eq!(http(web, "GET", "/raw?status=failed&before=x", &[("Cookie", &ana)], "").status, 200);

        // Logout ends the session for good.
        let dashboard = http(web, "GET", "/", &[("Cookie", &ana)], "");
        let out = http(web, "POST", "/logout", &[("Cookie", &ana)], &format!("csrf={}", csrf_of(&dashboard.body)));
        assert_eq!(out.status, 303);
        assert_eq!(http(web, "GET", "/", &[("Cookie", &ana)], "").status, 303);

        // A disabled operator's sessions end at once.
        assert_eq!(http(web, "GET", "/", &[("Cookie", &vic)], "").status, 200);
        let out = abuse_inbox_stdin(&["users", "disable", "vic", "--db", db.to_str().unwrap()], None);
        assert!(out.status.success());
        assert_eq!(http(web, "GET", "/", &[("Cookie", &vic)], "").status, 303);
        assert_eq!(http(web, "POST", "/login", &[], "name=vic&password=vic-password-1").status, 401);

        // The dashboard's hourly counts (all, and open), kept by triggers, are
        // the reports' (one was resolved above).
        // (kept by the triggers, counted from the reports)
        let hourly = || {
            (
                crate::util::texts(
                    &db,
                    "SELECT hour || ' ' || abuse_type || ' ' || CAST(n AS TEXT) || ' ' || CAST(n_open AS TEXT) FROM report_hours WHERE n > 0 ORDER BY 1",
                ),
                crate::util::texts(
                    &db,
                    "SELECT substr(received_at, 1, 13) || ' ' || abuse_type || ' ' || CAST(count(*) AS TEXT) || ' ' || CAST(sum(CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS TEXT) FROM reports GROUP BY substr(received_at, 1, 13), abuse_type ORDER BY 1",
                ),
            )
        };
        let (kept, counted) = hourly();
        assert_eq!(kept, counted);
        // Owners imported, and the reports routed again: the dashboard names
        // the most reported customers.
        let ana = log_in(web, "ana", "ana-password-1");
        let dashboard = http(web, "GET", "/", &[("Cookie", &ana)], "");
        assert!(dashboard.body.contains("No report names a customer"), "{}", dashboard.body);
        let owners_dir = tempfile::tempdir().unwrap();
        let owners = owners_dir.path().join("owners.csv");
        std::fs::write(
            &owners,
            "customer,name,email,language,netblock,domain,valid_from,valid_until\n\
             c-900,Test Net Hosting,abuse@net.example,en,192.0.2.0/24,,,\n",
        )
        .unwrap();
        let out = abuse_inbox_stdin(&["owners", "import", owners.to_str().unwrap(), "--db", db.to_str().unwrap()], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = abuse_inbox_stdin(&["reprocess", "--all", "--db", db.to_str().unwrap()], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The case resolved above lost its reports to the customer's case
        // and stays, with its history (a reprocess once failed on it).
        let kept = crate::util::texts(&db, &format!("SELECT status || ' ' || decision FROM cases WHERE id = {case}"));
        assert_eq!(kept, vec![Some("resolved removed".to_owned())]);
        let failed = crate::util::texts(&db, "SELECT CAST(count(*) AS TEXT) FROM raw_messages WHERE status = 'failed'");
        assert_eq!(failed, vec![Some("0".to_owned())]);
        let dashboard = http(web, "GET", "/", &[("Cookie", &ana)], "");
        let link = "/reports?customer=c%2D900";
        assert!(dashboard.body.contains(&format!("<a href=\"{link}\">c-900</a>")), "{}", dashboard.body);
        let theirs = http(web, "GET", link, &[("Cookie", &ana)], "");
        assert_eq!(ids(&theirs.body).len(), 4, "{}", theirs.body);
        crate::util::execute(
            &db,
            "UPDATE reports SET abuse_type = 'unknown' WHERE id = (SELECT min(id) FROM reports);
             UPDATE reports SET status = 'open' WHERE id = (SELECT max(id) FROM reports WHERE status = 'resolved')",
        );
        let (kept, counted) = hourly();
        assert_eq!(kept, counted, "after reprocess, a change of type and one of status");
    })
    .await
    .unwrap();
    // The console follows a reload of the daemon's configuration: with the
    // limit at this address's failures so far, even the right password
    // waits; with it raised again, it logs in.
    let login = move || {
        http(
            web,
            "POST",
            "/login",
            &[],
            "name=ana&password=ana-password-1",
        )
        .status
    };
    for (limit, status) in [(1, 429), (1000, 303)] {
        assert_eq!(
            server.reload_with(|c| c.web.max_failed_logins = limit),
            Ok(vec!["web.max_failed_logins".to_owned()])
        );
        assert_eq!(
            tokio::task::spawn_blocking(login).await.unwrap(),
            status,
            "limit {limit}"
        );
    }
    server.stop().await;
}

/// `abuse-inbox web` as a process: two of them on one store count the same
/// failed logins (they are in the store); SIGHUP reloads the configuration
/// of each; SIGTERM stops it with exit 0.
#[test]
fn console_processes_share_the_login_limit_and_reload_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("desk.db");
    let config = dir.path().join("abuse-inbox.toml");
    std::fs::write(&config, "[web]\nmax_failed_logins = 4\n").unwrap();
    let cfg = config.to_str().unwrap();
    // The store, made by an ingest.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/eml/csv/020-csv-basic-sshd.eml");
    let out = abuse_inbox_stdin(
        &[
            "ingest",
            "--db",
            db.to_str().unwrap(),
            fixture.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = abuse_inbox_stdin(
        &[
            "--config",
            cfg,
            "users",
            "add",
            "ana",
            "--role",
            "agent",
            "--db",
            db.to_str().unwrap(),
        ],
        Some(b"ana-password-1\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = || {
        let port = crate::util::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_abuse-inbox"))
            .args([
                "--config",
                cfg,
                "web",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--db", db.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        crate::util::wait_for(30, "the console listening", || {
            TcpStream::connect(addr).ok()
        });
        (child, addr)
    };
    let (mut one, a) = start();
    let (mut two, b) = start();
    let guess = |addr| http(addr, "POST", "/login", &[], "name=ana&password=guess").status;
    // Two failures on each console: four in the store, the limit.
    for addr in [a, b, a, b] {
        assert_eq!(guess(addr), 401);
    }
    assert_eq!(guess(a), 429, "the other console's failures count here");
    assert_eq!(guess(b), 429);
    // A reload raises the limit on the console that is told.
    std::fs::write(&config, "[web]\nmax_failed_logins = 6\n").unwrap();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(one.id() as i32, libc::SIGHUP) };
    crate::util::wait_for(20, "the reload", || (guess(a) == 401).then_some(()));
    assert_eq!(guess(b), 429, "the console not told keeps its limit");
    for child in [&mut one, &mut two] {
        // SAFETY: as above.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
}
on_both_stores!(the_console_shows_filters_and_acts_only_with_its_token);

/// One request over TLS through `openssl s_client` (installed by
/// `.ci/run`); the raw answer.
fn https(addr: SocketAddr, request: &str) -> String {
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// With `[tls]` the console speaks only TLS, with the daemon's
/// certificate, and its cookie is `Secure`; a client that stalls in the
/// handshake holds up nobody.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_speaks_tls_with_the_daemons_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, private) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert, key.cert.pem()).unwrap();
    std::fs::write(&private, key.signing_key.serialize_pem()).unwrap();
    let mut config = Config::default();
    config.tls.cert_file = Some(cert);
    config.tls.key_file = Some(private);
    config.web.listen = "127.0.0.1:0".into();
    let server = TestServer::start(config).await;
    let web = server.web_addr().unwrap();
    let db = server.db_path();
    tokio::task::spawn_blocking(move || {
        add_user(&db, "ana", "agent", "ana-password-1");
        // A client that connects and says nothing holds a handshake slot,
        // not the console.
        let _stalled = TcpStream::connect(web).unwrap();
        let page = https(web, &format!("GET /login HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n"));
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("content-security-policy: default-src 'self'"));
        let body = "name=ana&password=ana-password-1";
        let login = https(
            web,
            &format!(
                "POST /login HTTP/1.1\r\nHost: {web}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(login.starts_with("HTTP/1.1 303"), "{login}");
        let cookie = login.lines().find(|l| l.starts_with("set-cookie:")).unwrap();
        assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
        // Plain HTTP to the TLS port gets no page.
        let plain = http(web, "GET", "/login", &[], "");
        assert_eq!(plain.status, 0, "{}", plain.body);
    })
    .await
    .unwrap();
    server.stop().await;
}
