//! The console in a real browser: Debian's Chromium driven through
//! chromedriver's WebDriver protocol (both installed by `.ci/run`). Log in,
//! filter by a CIDR, open the hostile report and resolve it; a viewer sees
//! no button; a cross-origin form changes nothing. On every page: the
//! canary any executed script from a report would set stays unset, the
//! browser logs no Content-Security-Policy violation, and no request
//! leaves the origin. Screenshots go to `target/console-screenshots/`.

use super::{add_user, console_configured, FIXTURES};
use crate::util::{free_port, skipped, wait_for, Store};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and one headless Chromium session; both end on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", Value::Null);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One WebDriver call: the answer's `value`, or the error it says.
fn webdriver(port: u16, method: &str, path: &str, body: &Value) -> Result<Value, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open: read the head, then as many
    // bytes as it says (or chunks up to the last one).
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let complete = |raw: &[u8]| -> bool {
        let text = String::from_utf8_lossy(raw);
        let Some((head, rest)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let head = head.to_ascii_lowercase();
        if head.contains("transfer-encoding: chunked") {
            return rest.ends_with("0\r\n\r\n");
        }
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        rest.len() >= length
    };
    while !complete(&raw) {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or("no HTTP answer")?;
    let json_text = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 || after.len() < size {
                break;
            }
            out.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
        out
    } else {
        rest.to_owned()
    };
    let answer: Value =
        serde_json::from_str(&json_text).map_err(|e| format!("{e}: {json_text}"))?;
    if head.starts_with("HTTP/1.1 200") {
        Ok(answer["value"].clone())
    } else {
        Err(answer["value"].to_string())
    }
}

impl Browser {
    fn start() -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (which("chromium"), which("chromedriver")) else {
            skipped("chromium and chromium-driver are not installed here; .ci/run installs them");
            return None;
        };
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        wait_for(30, "chromedriver answers", || {
            webdriver(port, "GET", "/status", &Value::Null)
                .ok()
                .filter(|v| v["ready"] == true)
        });
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1100", "--no-first-run",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let session =
            webdriver(port, "POST", "/session", &capabilities).expect("a Chromium session");
        let session = session["sessionId"].as_str().unwrap().to_owned();
        Some(Browser {
            driver,
            port,
            session,
            _profile: profile,
        })
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        webdriver(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            &body,
        )
    }

    fn go(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).unwrap();
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        )
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
        .collect()
    }

    fn find(&self, css: &str) -> String {
        self.find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {css} on {}", self.script("return location.href")))
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/clear"), json!({}))
            .unwrap();
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .unwrap();
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .unwrap();
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .unwrap()
    }

    fn text(&self, css: &str) -> String {
        self.text_now(css)
            .unwrap_or_else(|| panic!("no {css} on {}", self.script("return location.href")))
    }

    /// The text of `css` if the page has it now; `None` while a navigation
    /// replaces the page (the element found may be gone by the time its
    /// text is asked for: "stale element reference").
    fn text_now(&self, css: &str) -> Option<String> {
        let found = self
            .call(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .ok()?;
        let element = found.as_array()?.first()?[ELEMENT].as_str()?.to_owned();
        let text = self
            .call("GET", &format!("/element/{element}/text"), Value::Null)
            .ok()?;
        text.as_str().map(str::to_owned)
    }

    /// `location.pathname` + `location.search` now; `None` while a
    /// navigation is under way.
    fn location_now(&self) -> Option<String> {
        let at = self
            .call(
                "POST",
                "/execute/sync",
                json!({"script": "return location.pathname + location.search", "args": []}),
            )
            .ok()?;
        at.as_str().map(str::to_owned)
    }

    fn screenshot(&self, name: &str) {
        let png = self.call("GET", "/screenshot", Value::Null).unwrap();
        let bytes = data_encoding::BASE64
            .decode(png.as_str().unwrap().as_bytes())
            .unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// What every page must hold to: no script from a report ran, no CSP
    /// violation, no request to anywhere but `origin`.
    fn assert_clean(&self, origin: &str, page: &str) {
        assert_eq!(
            self.script("return window.canary === undefined"),
            json!(true),
            "{page}: a report's script ran"
        );
        let logs = self
            .call("POST", "/se/log", json!({"type": "browser"}))
            .unwrap();
        for entry in logs.as_array().unwrap() {
            let message = entry["message"].as_str().unwrap_or("");
            assert!(
                !message.contains("Content Security Policy") && !message.contains("Refused to"),
                "{page}: {message}"
            );
        }
        let requests = self.script("return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).map(e => e.name)");
        for name in requests.as_array().unwrap() {
            let name = name.as_str().unwrap();
            assert!(
                name.starts_with(origin),
                "{page}: a request left the origin: {name}"
            );
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

fn log_in(browser: &Browser, origin: &str, name: &str, password: &str) {
    browser.go(&format!("{origin}/login"));
    browser.type_into("input[name=name]", name);
    browser.type_into("input[name=password]", password);
    browser.click("form.login button");
    for _ in 0..100 {
        if browser.location_now().as_deref() == Some("/") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "no dashboard after logging in as {name}: at {} showing {}",
        browser.script("return location.href"),
        browser.script("return document.body.innerText")
    );
}

async fn an_operator_works_the_desk_in_chromium(store: Store) {
    let Some(browser) = tokio::task::spawn_blocking(Browser::start).await.unwrap() else {
        return;
    };
    // Replies wait for review, with a relay to go to once released.
    let sink = crate::replies::relay_sink(tempfile::tempdir().unwrap(), "127.0.0.1:0").await;
    let mut config = abuse_inbox::config::Config::default();
    config.reply.review = true;
    config.reply.relay_host = Some("127.0.0.1".into());
    config.reply.relay_port = sink.addr.port();
    let Some(server) = console_configured(store, config, FIXTURES).await else {
        return;
    };
    let web: SocketAddr = server.web_addr().unwrap();
    let db = server.db_path();
    let suffix = match store {
        Store::Sqlite => "sqlite",
        Store::Postgres => "postgres",
    };
    tokio::task::spawn_blocking(move || {
        add_user(&db, "ana", "agent", "ana-password-1");
        add_user(&db, "vic", "viewer", "vic-password-1");
        let origin = format!("http://{web}");
        let hostile = crate::util::texts(&db, "SELECT id FROM reports WHERE reporter LIKE '%hostile-reports%'")[0]
            .clone()
            .unwrap();
        let other = crate::util::texts(&db, "SELECT min(id) FROM reports WHERE reporter NOT LIKE '%hostile-reports%'")[0]
            .clone()
            .unwrap();

        browser.go(&format!("{origin}/login"));
        browser.screenshot(&format!("login-{suffix}"));
        log_in(&browser, &origin, "ana", "ana-password-1");
        browser.assert_clean(&origin, "dashboard");
        assert!(!browser.find_all("figure.chart svg rect").is_empty(), "the charts have bars");
        browser.screenshot(&format!("dashboard-{suffix}"));

        // Filter by a CIDR and by words through the form.
        browser.go(&format!("{origin}/reports"));
        browser.type_into("input[name=ip]", "192.0.2.64/26");
        browser.type_into("input[name=q]", "phishing");
        browser.click("form.filters button");
        wait_for(10, "the filtered list", || {
            browser.location_now().filter(|at| at.contains("ip=192.0.2.64%2F26"))
        });
        let rows = browser.find_all("table.reports tbody tr");
        assert_eq!(rows.len(), 1, "only the hostile report is in 192.0.2.64/26 with 'phishing'");
        browser.assert_clean(&origin, "filtered list");
        browser.screenshot(&format!("reports-{suffix}"));

        // The hostile report: its roles, its raw text, nothing run.
        browser.click(&format!("a[href='/reports/{hostile}']"));
        wait_for(10, "the report page", || {
            browser.location_now().filter(|at| *at == format!("/reports/{hostile}"))
        });
        browser.assert_clean(&origin, "hostile report");
        assert!(browser.text("table.roles").contains("source"));
        assert!(browser.text("#subject").contains("<script>"), "the subject is shown as text");
        assert!(
            browser.find_all("a[href^='javascript:'], a[href^='data:'], iframe, img, script:not([src='/static/desk.js'])").is_empty(),
            "nothing from the report became an element"
        );
        browser.screenshot(&format!("report-{suffix}"));

        // A cross-origin form (from a data: page) acts on nothing: the
        // SameSite=Strict cookie does not go with it.
        browser.go(&format!(
            "data:text/html,<form method=post action='{origin}/reports/{other}/resolve'><input name=csrf value=x></form><script>document.forms[0].submit()</script>"
        ));
        std::thread::sleep(Duration::from_millis(500));
        let status = |id: &str| {
            crate::util::texts(&db, &format!("SELECT status FROM reports WHERE id = {id}"))[0]
                .clone()
                .unwrap()
        };
        assert_eq!(status(&other), "open");

        // Resolve with a note.
        browser.go(&format!("{origin}/reports/{hostile}"));
        browser.type_into("form.act input[name=note]", "taken down by the customer");
        browser.click("#resolve");
        wait_for(10, "the report resolved", || {
            browser.text_now("#status").filter(|s| s == "resolved")
        });
        assert_eq!(status(&hostile), "resolved");
        browser.assert_clean(&origin, "resolved report");
        browser.screenshot(&format!("resolved-{suffix}"));

        // Release a held reply: it leaves the outbox's held list for the relay.
        browser.go(&format!("{origin}/replies"));
        browser.assert_clean(&origin, "replies");
        browser.screenshot(&format!("replies-{suffix}"));
        let held = crate::util::texts(&db, "SELECT CAST(max(id) AS TEXT) FROM outbox WHERE state = 'held'")[0]
            .clone()
            .expect("a held reply");
        browser.click(&format!("form[action='/replies/{held}/release'] button"));
        wait_for(10, "the reply released", || {
            crate::util::texts(&db, &format!("SELECT state FROM outbox WHERE id = {held}"))[0]
                .clone()
                .filter(|s| s != "held")
        });
        let history = crate::util::texts(&db, "SELECT detail FROM report_events WHERE detail LIKE '%released by%'");
        assert_eq!(history, vec![Some(format!("reply {held} released by ana"))]);

        // The other pages: cases, the quarantine.
        for (path, name) in [("/cases", "cases"), ("/raw?status=processed", "raw")] {
            browser.go(&format!("{origin}{path}"));
            browser.assert_clean(&origin, name);
            browser.screenshot(&format!("{name}-{suffix}"));
        }

        // Log out; a viewer sees no button to act with.
        browser.click("form.logout button");
        wait_for(10, "the login page", || browser.location_now().filter(|at| at == "/login"));
        log_in(&browser, &origin, "vic", "vic-password-1");
        browser.go(&format!("{origin}/reports/{other}"));
        assert!(browser.find_all("#resolve").is_empty(), "a viewer has no Resolve button");
        browser.assert_clean(&origin, "viewer's report page");
    })
    .await
    .unwrap();
    server.stop().await;
    sink.stop().await;
}
on_both_stores!(an_operator_works_the_desk_in_chromium);
