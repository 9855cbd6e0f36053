//! The operators' console: a small HTTP server over the store (axum),
//! pages rendered on the server (maud), no script needed and none from
//! elsewhere. `serve` runs it on `web.listen` (or `serve --web`), and
//! `abuse-inbox web` runs it on its own against the same store.
//!
//! Safe by construction: every value is escaped by the templates; a
//! stranger's string is also made visible and clipped; URLs are text.
//! Every response carries a strict Content-Security-Policy. Actions are
//! POSTs with the session's CSRF token from the same origin, by an agent
//! or admin, and land in the report's history with the operator's name.

pub mod chart;
mod pages;
pub mod session;
mod tls;

use crate::config::{Config, WebConfig};
use crate::model::operator::OperatorRole;
use crate::model::{ReplyAction, ReplyPlan, ReportId};
use crate::runtime::SharedRuntime;
use crate::store::{self, Db, Location};
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The session cookie's name.
const COOKIE: &str = "desk_session";
/// Connections kept open to the store between requests.
const POOL: usize = 2;
/// How many reports a page of the list shows.
const PAGE: usize = 50;
/// The dashboard's top networks are those of the newest this many reports.
const RECENT: i64 = 10_000;
/// A session's `last_seen` is written at most this often.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// The operator of a request.
pub struct Me {
    pub name: String,
    pub role: OperatorRole,
    pub csrf: String,
    token_hash: String,
}

/// What the console runs on: the store, and the configuration in use —
/// the daemon's, swapped whole by a reload (SIGHUP), so the console's
/// limits, reply policy, notices and certificate follow it.
pub struct Desk {
    location: Location,
    pool: Mutex<Vec<Db>>,
    runtime: SharedRuntime,
    /// HTTPS only (a certificate was configured at start): the listener's
    /// kind cannot change while running; the certificate can.
    https: Option<tokio_rustls::TlsAcceptor>,
    /// A password hash to check against when the name is unknown, so that
    /// the answer takes as long as for a known name.
    dummy_hash: String,
}

impl Desk {
    /// The console on the store of `runtime`'s configuration (which does
    /// not change while running: `store.path` is a restart key).
    ///
    /// # Errors
    /// A password hash cannot be made (never in practice).
    pub fn new(runtime: SharedRuntime) -> Result<Desk, String> {
        let now = runtime.current();
        let (location, https) = (Location::parse(&now.config.store.path), now.tls.clone());
        Ok(Desk {
            location,
            pool: Mutex::new(Vec::new()),
            runtime,
            https,
            dummy_hash: {
                let hash = session::hash_password("no such operator")?;
                crate::runtime::return_freed_memory();
                hash
            },
        })
    }

    /// The console for `config` alone (`abuse-inbox web`, benchmarks); a
    /// reloader swaps its [`Desk::runtime`].
    ///
    /// # Errors
    /// The configuration does not compile (its rules, templates, notices).
    pub fn for_config(config: &Config) -> Result<Desk, String> {
        let runtime = crate::runtime::Runtime::compile(config.clone())
            .map_err(|problems| format!("invalid configuration: {}", problems.join("; ")))?;
        Desk::new(SharedRuntime::new(runtime))
    }

    /// The configuration it runs on, for a reloader to swap.
    pub fn runtime(&self) -> SharedRuntime {
        self.runtime.clone()
    }

    /// `[web]` as it is now.
    fn web(&self) -> WebConfig {
        self.runtime.current().config.web.clone()
    }

    /// The reply policy a resolve follows now (none when replies are off).
    fn reply_plan(&self) -> Option<ReplyPlan> {
        let runtime = self.runtime.current();
        runtime
            .config
            .reply
            .enabled
            .then(|| runtime.pipeline.reply_plan(""))
    }

    fn lifetimes(&self) -> session::Lifetimes {
        let web = self.web();
        session::Lifetimes {
            idle: chrono::Duration::minutes(
                i64::try_from(web.session_idle_minutes).unwrap_or(i64::MAX / 120_000),
            ),
            absolute: chrono::Duration::hours(
                i64::try_from(web.session_max_hours).unwrap_or(i64::MAX / 7_200_000),
            ),
        }
    }

    /// Runs `f` on a store connection, on a blocking thread.
    async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Db) -> Result<T, store::Error> + Send + 'static,
    ) -> Result<T, Response> {
        let desk = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let pooled = desk.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
            let mut db = match pooled {
                Some(db) => db,
                None => {
                    let db = store::open(
                        &desk.location,
                        store::Mode::ReadWrite {
                            role: store::Role::Cli,
                            create: false,
                        },
                    )?;
                    db.use_small_cache()?;
                    db
                }
            };
            let out = f(&mut db);
            if let Ok(mut pool) = desk.pool.lock() {
                if pool.len() < POOL {
                    pool.push(db);
                }
            }
            out
        })
        .await;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                warn!(error = %error, "console: the store failed");
                Err(failure(
                    None,
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the store failed: {error}"),
                ))
            }
            Err(_) => Err(failure(
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request failed",
            )),
        }
    }
}

fn failure(me: Option<&Me>, status: StatusCode, text: &str) -> Response {
    (
        status,
        Html(pages::error_page(me, status.as_u16(), text).into_string()),
    )
        .into_response()
}

/// The console's routes, with the security headers on every response.
pub fn router(desk: Arc<Desk>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/reports", get(report_list))
        .route("/reports/{id}", get(report_page))
        .route("/reports/{id}/raw", get(raw_message))
        .route("/reports/{id}/resolve", post(resolve))
        .route("/cases", get(case_list))
        .route("/cases/{id}/resolve", post(resolve_case))
        .route("/replies", get(reply_list))
        .route("/replies/{id}/{action}", post(reply_action))
        .route("/raw", get(raw_list))
        .route("/raw/{id}/retry", post(retry_raw))
        .route("/raw/{id}/discard", post(discard_raw))
        .route("/static/desk.css", get(stylesheet))
        .route("/static/desk.js", get(script))
        .fallback(|| async { failure(None, StatusCode::NOT_FOUND, "no such page") })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(desk)
}

/// Serves the console on `listener` until `stop`.
///
/// # Errors
/// The listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    desk: Arc<Desk>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = desk.https.clone();
    let runtime = desk.runtime.clone();
    let app = router(desk).into_make_service_with_connect_info::<tls::Peer>();
    let stopped = stop.clone();
    match acceptor {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
        }
        Some(acceptor) => {
            let listener = tls::TlsListener::start(listener, acceptor, runtime, stop)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
        }
    }
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| value.to_owned())
        })
}

fn to_login() -> Response {
    Redirect::to("/login").into_response()
}

/// The operator whose session cookie came with the request, or the way
/// to the login page.
async fn me(desk: &Arc<Desk>, headers: &HeaderMap) -> Result<Me, Response> {
    let Some(token) = cookie_token(headers) else {
        return Err(to_login());
    };
    let hash = session::token_hash(&token);
    let lookup = hash.clone();
    let Some(row) = desk.db(move |db| db.session(&lookup)).await? else {
        return Err(to_login());
    };
    let now = chrono::Utc::now();
    let live = row.operator.disabled_at.is_none()
        && session::is_live(&row.created_at, &row.last_seen, now, desk.lifetimes());
    if !live {
        let gone = hash.clone();
        desk.db(move |db| db.end_session(&gone)).await?;
        return Err(to_login());
    }
    let stale = chrono::DateTime::parse_from_rfc3339(&row.last_seen)
        .map(|seen| now - seen.to_utc() >= TOUCH_EVERY)
        .unwrap_or(true);
    if stale {
        let touched = hash.clone();
        let at = crate::now_rfc3339();
        desk.db(move |db| db.touch_session(&touched, &at)).await?;
    }
    Ok(Me {
        name: row.operator.name,
        role: row.operator.role,
        csrf: row.csrf,
        token_hash: hash,
    })
}

/// A handler that takes `Me` needs a live session; without one, the
/// request goes to the login page.
impl axum::extract::FromRequestParts<Arc<Desk>> for Me {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        desk: &Arc<Desk>,
    ) -> Result<Me, Response> {
        me(desk, &parts.headers).await
    }
}

/// Whether a POST comes from one of our own pages. A browser says where a
/// request comes from: `Sec-Fetch-Site` (which no page can forge) decides
/// when it is there; else the `Origin`, which must be ours (with
/// `Referrer-Policy: no-referrer` a browser may send `Origin: null` from
/// our own form, but then it sends `Sec-Fetch-Site` too). A client that
/// says neither still needs the session's CSRF token.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            origin == format!("http://{host}") || origin == format!("https://{host}")
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The checks every action passes: same origin, the session's CSRF
/// token, and a role that may act; the refusal when one fails.
fn refusal(me: &Me, headers: &HeaderMap, csrf: &str) -> Option<Response> {
    if !same_origin(headers) || !session::same_token(csrf, &me.csrf) {
        warn!(operator = %me.name, "console: an action without this session's token or from another origin was refused");
        return Some(failure(
            Some(me),
            StatusCode::FORBIDDEN,
            "refused: this form did not come from this console (reload the page and try again)",
        ));
    }
    if !me.role.may_act() {
        return Some(failure(
            Some(me),
            StatusCode::FORBIDDEN,
            "refused: a viewer cannot change anything (ask an admin for the agent role)",
        ));
    }
    None
}

async fn login_page() -> Response {
    Html(pages::login(None).into_string()).into_response()
}

#[derive(serde::Deserialize)]
struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(desk): State<Arc<Desk>>,
    ConnectInfo(tls::Peer(peer)): ConnectInfo<tls::Peer>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return failure(
            None,
            StatusCode::FORBIDDEN,
            "refused: this form did not come from this console",
        );
    }
    let address = peer.ip().to_string();
    let name: String = form.name.chars().take(64).collect();
    let keys = session::login_keys(&address, &name);
    let over = crate::rfc3339(session::login_windows_over(chrono::Utc::now()));
    let max_failures = desk.web().max_failed_logins;
    let failures = {
        let (keys, over) = (keys.clone(), over.clone());
        match desk.db(move |db| db.login_failures(&keys, &over)).await {
            Ok(n) => n,
            Err(response) => return response,
        }
    };
    if !session::login_allowed(failures, max_failures) {
        warn!(peer = %address, operator = %crate::safe_text::clip(&name, 64), "console: too many failed logins; refused");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            Html(
                pages::login(Some("Too many failed logins: wait a quarter of an hour."))
                    .into_string(),
            ),
        )
            .into_response();
    }
    let lookup = name.clone();
    let account = match desk.db(move |db| db.operator_login(&lookup)).await {
        Ok(account) => account,
        Err(response) => return response,
    };
    let (hash, active) = match &account {
        Some((operator, hash)) => (hash.clone(), operator.disabled_at.is_none()),
        None => (desk.dummy_hash.clone(), false),
    };
    let password = form.password;
    // Argon2 takes 19 MiB for a moment: given back at once.
    let matches = tokio::task::spawn_blocking(move || {
        let matches = session::verify_password(&password, &hash);
        crate::runtime::return_freed_memory();
        matches
    })
    .await
    .unwrap_or(false);
    if !(matches && active) {
        let now = crate::now_rfc3339();
        if let Err(response) = desk
            .db(move |db| db.count_login_failure(&keys, &now, &over))
            .await
        {
            return response;
        }
        warn!(peer = %address, operator = %crate::safe_text::clip(&name, 64), "console: login refused");
        return (
            StatusCode::UNAUTHORIZED,
            Html(
                pages::login(Some("Wrong name or password, or the account is disabled."))
                    .into_string(),
            ),
        )
            .into_response();
    }
    let cleared = session::name_key(&name);
    if let Err(response) = desk.db(move |db| db.clear_login_failures(&cleared)).await {
        return response;
    }
    let token = session::new_token();
    let hash = session::token_hash(&token);
    let csrf = session::new_token();
    let at = crate::now_rfc3339();
    let who = name.clone();
    let lifetimes = desk.lifetimes();
    let idle_before = (chrono::Utc::now() - lifetimes.idle).to_rfc3339();
    let started_before = (chrono::Utc::now() - lifetimes.absolute).to_rfc3339();
    if let Err(response) = desk
        .db(move |db| {
            db.end_stale_sessions(&idle_before, &started_before)?;
            db.create_session(&hash, &who, &csrf, &at)
        })
        .await
    {
        return response;
    }
    info!(peer = %address, operator = %name, "console: logged in");
    // Over TLS the cookie is never sent in clear.
    let secure = if desk.https.is_some() { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(desk): State<Arc<Desk>>,
    me: Me,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !same_origin(&headers) || !session::same_token(&form.csrf, &me.csrf) {
        return failure(
            Some(&me),
            StatusCode::FORBIDDEN,
            "refused: this form did not come from this console",
        );
    }
    let hash = me.token_hash.clone();
    if let Err(response) = desk.db(move |db| db.end_session(&hash)).await {
        return response;
    }
    info!(operator = %me.name, "console: logged out");
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

async fn dashboard(State(desk): State<Arc<Desk>>, me: Me) -> Response {
    let now = chrono::Utc::now();
    let month = (now - chrono::Duration::days(29))
        .format("%Y-%m-%d")
        .to_string();
    let day = (now - chrono::Duration::hours(23))
        .format("%Y-%m-%dT%H")
        .to_string();
    let data = desk
        .db(move |db| {
            Ok((
                db.dashboard(RECENT)?,
                db.reports_per_period(&month, 10)?,
                db.reports_per_period(&day, 13)?,
            ))
        })
        .await;
    let (counts, per_day, per_hour) = match data {
        Ok(data) => data,
        Err(response) => return response,
    };
    let days: Vec<String> = (0..30)
        .rev()
        .map(|d| {
            (now - chrono::Duration::days(d))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    let hours: Vec<String> = (0..24)
        .rev()
        .map(|h| {
            (now - chrono::Duration::hours(h))
                .format("%Y-%m-%dT%H")
                .to_string()
        })
        .collect();
    let series: Vec<&str> = crate::model::AbuseType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let bars = |periods: &[String],
                counts: &[(String, crate::model::AbuseType, u64)],
                label: fn(&str) -> String| {
        periods
            .iter()
            .map(|p| chart::Bar {
                label: label(p),
                counts: crate::model::AbuseType::ALL
                    .iter()
                    .map(|t| {
                        counts
                            .iter()
                            .filter(|(at, kind, _)| at == p && kind == t)
                            .map(|(_, _, n)| *n)
                            .sum()
                    })
                    .collect(),
            })
            .collect::<Vec<_>>()
    };
    let d = pages::Dashboard {
        counts,
        per_day: chart::stacked(
            "Reports per day, last 30 days (UTC)",
            &series,
            &bars(&days, &per_day, |p| p.get(5..).unwrap_or(p).to_owned()),
        ),
        per_hour: chart::stacked(
            "Reports per hour, last 24 hours (UTC)",
            &series,
            &bars(&hours, &per_hour, |p| {
                p.get(11..).unwrap_or(p).to_owned() + "h"
            }),
        ),
    };
    Html(pages::dashboard(&me, &d).into_string()).into_response()
}

/// The list's query as the store's filter, or what is wrong with it.
fn list_filter(query: &pages::ListQuery) -> Result<store::ListFilter, String> {
    let text = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.chars().take(200).collect::<String>())
    };
    let time = |s: &str, what: &str| -> Result<Option<String>, String> {
        match text(s) {
            None => Ok(None),
            Some(t) => chrono::DateTime::parse_from_rfc3339(&t)
                .map(|t| {
                    Some(
                        t.to_utc()
                            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    )
                })
                .map_err(|_| format!("{what}: not an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")),
        }
    };
    Ok(store::ListFilter {
        abuse_type: match text(&query.abuse_type) {
            None => None,
            Some(t) => Some(crate::model::AbuseType::parse(&t).ok_or("unknown type")?),
        },
        status: match text(&query.status) {
            None => None,
            Some(s) => {
                Some(crate::model::ReportStatus::parse(&s).ok_or("status: open or resolved")?)
            }
        },
        rsit_type: match text(&query.rsit) {
            None => None,
            Some(r) if crate::classify::rsit::is_type(&r) => Some(r),
            Some(_) => {
                return Err("unknown RSIT type (e.g. phishing, brute-force, spam)".to_owned())
            }
        },
        ip_range: match text(&query.ip) {
            None => None,
            Some(ip) => Some(crate::model::ip_range(&ip)?),
        },
        search: text(&query.q),
        reporter: text(&query.reporter),
        customer: text(&query.customer),
        since: time(&query.since, "since")?,
        until: time(&query.until, "until")?,
        before: query.before.map(ReportId),
        limit: PAGE + 1,
        ..store::ListFilter::default()
    })
}

async fn report_list(
    State(desk): State<Arc<Desk>>,
    me: Me,
    query: Result<Query<pages::ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return failure(
            Some(&me),
            StatusCode::BAD_REQUEST,
            "the filter could not be read",
        );
    };
    let filter = match list_filter(&query) {
        Ok(filter) => filter,
        Err(problem) => {
            return (
                StatusCode::BAD_REQUEST,
                Html(pages::report_list(&me, &query, Some(&problem), &[], None).into_string()),
            )
                .into_response()
        }
    };
    let mut reports = match desk.db(move |db| db.list_reports(&filter)).await {
        Ok(reports) => reports,
        Err(response) => return response,
    };
    let next = (reports.len() > PAGE).then(|| {
        reports.truncate(PAGE);
        reports.last().map(|r| r.id.0)
    });
    Html(pages::report_list(&me, &query, None, &reports, next.flatten()).into_string())
        .into_response()
}

async fn report_page(State(desk): State<Arc<Desk>>, me: Me, Path(id): Path<i64>) -> Response {
    let found = desk
        .db(move |db| {
            let Some(report) = db.report(ReportId(id))? else {
                return Ok(None);
            };
            let rows = db.evidence(report.id, 500)?;
            let events = db.events(report.id)?;
            let raw = db.raw(report.raw_id)?.map(|m| pages::raw_text(&m.bytes));
            Ok(Some((report, rows, events, raw)))
        })
        .await;
    let (report, rows, events, raw) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return failure(Some(&me), StatusCode::NOT_FOUND, "no such report"),
        Err(response) => return response,
    };
    let explained = crate::evidence::explain::explain_roles(&rows);
    let page = pages::ReportPage {
        report: &report,
        explained: &explained,
        rows: &rows,
        events: &events,
        raw,
    };
    Html(pages::report(&me, &page).into_string()).into_response()
}

async fn raw_message(State(desk): State<Arc<Desk>>, me: Me, Path(id): Path<i64>) -> Response {
    let found = desk
        .db(move |db| match db.report(ReportId(id))? {
            Some(report) => Ok(db.raw(report.raw_id)?.map(|m| m.bytes)),
            None => Ok(None),
        })
        .await;
    match found {
        Ok(Some(bytes)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{id}.eml\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => failure(
            Some(&me),
            StatusCode::NOT_FOUND,
            "no such report, or its message was pruned",
        ),
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
struct ResolveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

async fn resolve(
    State(desk): State<Arc<Desk>>,
    me: Me,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<ResolveForm>,
) -> Response {
    if let Some(response) = refusal(&me, &headers, &form.csrf) {
        return response;
    }
    let note: String = form.note.trim().chars().take(500).collect();
    let detail = if note.is_empty() {
        format!("by {}", me.name)
    } else {
        format!("by {}: {note}", me.name)
    };
    let plan = desk.reply_plan();
    let done = desk
        .db(move |db| {
            db.resolve(
                ReportId(id),
                Some(&detail),
                plan.as_ref(),
                &crate::now_rfc3339(),
            )
        })
        .await;
    match done {
        Ok(store::Resolution::Resolved) => {
            info!(operator = %me.name, report_id = id, "console: report resolved");
            Redirect::to(&format!("/reports/{id}")).into_response()
        }
        Ok(store::Resolution::AlreadyResolved { .. }) => {
            Redirect::to(&format!("/reports/{id}")).into_response()
        }
        Ok(store::Resolution::NoSuchReport) => {
            failure(Some(&me), StatusCode::NOT_FOUND, "no such report")
        }
        Err(response) => response,
    }
}

#[derive(serde::Deserialize, Default)]
struct StateQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    state: String,
    /// The last row of the page before (keyset paging).
    before: Option<i64>,
}

/// A page of at most `PAGE` rows out of `rows` (fetched with one more), and
/// the id to page on from when there are more.
fn paged<T>(mut rows: Vec<T>, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    if rows.len() <= PAGE {
        return (rows, None);
    }
    rows.truncate(PAGE);
    let next = rows.last().map(id);
    (rows, next)
}

fn state_query(
    query: Result<Query<StateQuery>, axum::extract::rejection::QueryRejection>,
) -> StateQuery {
    query.map(|Query(q)| q).unwrap_or_default()
}

async fn case_list(
    State(desk): State<Arc<Desk>>,
    me: Me,
    query: Result<Query<StateQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = state_query(query);
    let status =
        crate::model::CaseStatus::parse(&query.status).unwrap_or(crate::model::CaseStatus::Open);
    let after = query.before.map(crate::model::CaseId);
    match desk
        .db(move |db| db.cases(None, Some(status), None, after, PAGE + 1))
        .await
    {
        Ok(cases) => {
            let (cases, next) = paged(cases, |c| c.id.0);
            Html(pages::cases(&me, status.as_str(), &cases, next).into_string()).into_response()
        }
        Err(response) => response,
    }
}

#[derive(serde::Deserialize)]
struct CaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    ground: String,
}

/// Closes a case as `cases resolve` does: its reports no other open case
/// holds are resolved, every authenticated reporter hears "concluded"
/// once, the customer gets the closed notice.
async fn resolve_case(
    State(desk): State<Arc<Desk>>,
    me: Me,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CaseForm>,
) -> Response {
    use crate::model::case::{ClosedBy, Decided, Decision, Ground};
    if let Some(response) = refusal(&me, &headers, &form.csrf) {
        return response;
    }
    let decided = match (form.decision.as_str(), form.ground.as_str()) {
        ("", _) => None,
        (decision, ground) => match (Decision::parse(decision), ground) {
            (Some(decision), "") => Some(Decided {
                decision,
                ground: None,
            }),
            (Some(decision), ground) => match Ground::parse(ground) {
                Some(ground) => Some(Decided {
                    decision,
                    ground: Some(ground),
                }),
                None => {
                    return failure(
                        Some(&me),
                        StatusCode::BAD_REQUEST,
                        "unknown ground: illegal or terms",
                    )
                }
            },
            (None, _) => return failure(Some(&me), StatusCode::BAD_REQUEST, "unknown decision"),
        },
    };
    let note: String = form.note.trim().chars().take(500).collect();
    let note = if note.is_empty() {
        format!("by {}", me.name)
    } else {
        format!("by {}: {note}", me.name)
    };
    let runtime = desk.runtime.current();
    let done = desk
        .db(move |db| {
            if db.case(crate::model::CaseId(id))?.is_none() {
                return Ok(None);
            }
            crate::daemon::notices::close(
                db,
                &runtime,
                crate::model::CaseId(id),
                ClosedBy::Operator,
                Some(&note),
                decided,
                chrono::Utc::now(),
            )
            .map(Some)
        })
        .await;
    match done {
        Ok(Some(closed)) => {
            info!(operator = %me.name, case_id = id, closed_now = closed.closed_now, "console: case resolved");
            Redirect::to("/cases?status=resolved").into_response()
        }
        Ok(None) => failure(Some(&me), StatusCode::NOT_FOUND, "no such case"),
        Err(response) => response,
    }
}

async fn reply_list(
    State(desk): State<Arc<Desk>>,
    me: Me,
    query: Result<Query<StateQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = state_query(query);
    let state =
        crate::model::OutboxState::parse(&query.state).unwrap_or(crate::model::OutboxState::Held);
    let before = query.before.map(crate::model::OutboxId);
    match desk
        .db(move |db| db.replies(Some(state), before, PAGE + 1))
        .await
    {
        Ok(entries) => {
            let (entries, next) = paged(entries, |e| e.id.0);
            Html(pages::replies(&me, state.as_str(), &entries, next).into_string()).into_response()
        }
        Err(response) => response,
    }
}

/// Releases or discards one reply, as `replies release|discard` do, in the
/// report's history with the operator's name.
async fn act_on_reply(
    desk: Arc<Desk>,
    me: Me,
    headers: HeaderMap,
    id: i64,
    csrf: String,
    action: ReplyAction,
) -> Response {
    if let Some(response) = refusal(&me, &headers, &csrf) {
        return response;
    }
    if action == ReplyAction::Release && desk.runtime.current().config.reply.relay_host.is_none() {
        return failure(
            Some(&me),
            StatusCode::CONFLICT,
            "no relay is configured (reply.relay_host): a released reply could not go out; \
             configure one in the configuration the daemon and the console read",
        );
    }
    let ids = [crate::model::OutboxId(id)];
    let by = me.name.clone();
    let changed = desk
        .db(move |db| db.act_on_replies(action, &ids, false, Some(&by), &crate::now_rfc3339()))
        .await;
    match changed {
        Ok(1) => {
            info!(operator = %me.name, outbox_id = id, action = action.done(), "console: reply changed");
            Redirect::to("/replies").into_response()
        }
        Ok(_) => failure(
            Some(&me),
            StatusCode::CONFLICT,
            &format!(
                "only a {} reply can be {}",
                action.applies_to_words(),
                action.done()
            ),
        ),
        Err(response) => response,
    }
}

/// `POST /replies/ID/release` and `/replies/ID/discard`.
async fn reply_action(
    State(desk): State<Arc<Desk>>,
    me: Me,
    headers: HeaderMap,
    Path((id, verb)): Path<(i64, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    match ReplyAction::parse(&verb) {
        Some(action) => act_on_reply(desk, me, headers, id, form.csrf, action).await,
        None => failure(Some(&me), StatusCode::NOT_FOUND, "no such page"),
    }
}

async fn raw_list(
    State(desk): State<Arc<Desk>>,
    me: Me,
    query: Result<Query<StateQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = state_query(query);
    let status =
        crate::model::RawStatus::parse(&query.status).unwrap_or(crate::model::RawStatus::Failed);
    let before = query.before.map(crate::model::RawId);
    match desk
        .db(move |db| db.raw_list(Some(status), before, PAGE + 1))
        .await
    {
        Ok(list) => {
            let (list, next) = paged(list, |m| m.id.0);
            Html(pages::raw_messages(&me, status.as_str(), &list, next).into_string())
                .into_response()
        }
        Err(response) => response,
    }
}

/// Moves a raw message from one of `from` to `to`, as `raw retry` and
/// `raw discard` do.
async fn set_raw(
    desk: Arc<Desk>,
    me: Me,
    headers: HeaderMap,
    id: i64,
    csrf: String,
    (from, to, what): (
        &'static [crate::model::RawStatus],
        crate::model::RawStatus,
        &'static str,
    ),
) -> Response {
    if let Some(response) = refusal(&me, &headers, &csrf) {
        return response;
    }
    let ids = [crate::model::RawId(id)];
    match desk.db(move |db| db.set_raw_status(&ids, from, to)).await {
        Ok(1) => {
            info!(operator = %me.name, raw_id = id, action = what, "console: raw message changed");
            Redirect::to(&format!("/raw?status={}", to.as_str())).into_response()
        }
        Ok(_) => failure(
            Some(&me),
            StatusCode::CONFLICT,
            &format!("message {id} cannot be {what} in its state"),
        ),
        Err(response) => response,
    }
}

async fn retry_raw(
    State(desk): State<Arc<Desk>>,
    me: Me,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    use crate::model::RawStatus::{Discarded, Failed, Received};
    set_raw(
        desk,
        me,
        headers,
        id,
        form.csrf,
        (&[Failed, Discarded], Received, "retried"),
    )
    .await
}

async fn discard_raw(
    State(desk): State<Arc<Desk>>,
    me: Me,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    use crate::model::RawStatus::{Discarded, Failed, Received};
    set_raw(
        desk,
        me,
        headers,
        id,
        form.csrf,
        (&[Failed, Received], Discarded, "discarded"),
    )
    .await
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("desk.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("desk.js"),
    )
        .into_response()
}
