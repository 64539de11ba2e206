//! The console's pages and its one action endpoint: what each shows, read through the backend.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_common::engine::{RecordState, SyncRecord};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use super::shell::{Console, Shared, failure, message, render, same_origin};
use super::text::{Lang, label};
use crate::actions::{self, Actions, Replay};
use crate::backend::{Backend, Requeue};
use crate::error::CliError;
use crate::output::{lag, time_text};

/// The query every page takes.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    /// `en` for English; Chinese otherwise.
    lang: Option<String>,
    /// On `/doc`: the scheme.
    scheme: Option<String>,
    /// On `/doc`: a document's key or number.
    key: Option<String>,
}

impl PageQuery {
    fn lang(&self) -> Lang {
        Lang::from_query(self.lang.as_deref())
    }
}

/// One bar of the pushed-per-hour chart.
#[derive(Serialize)]
struct Bar {
    x: usize,
    height: u64,
    count: u64,
    label: String,
}

/// Documents synced per hour over the last 24 hours, oldest first, from the records' last change.
fn chart(records: &[SyncRecord], now: Timestamp) -> Value {
    let mut counts = [0u64; 24];
    for record in records {
        let age = now.duration_since(record.updated_at);
        if age.is_negative() || age >= SignedDuration::from_hours(24) {
            continue;
        }
        counts[23 - (age.as_secs() / 3_600) as usize] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(hour, &count)| {
            let at = now - SignedDuration::from_hours(23 - hour as i64);
            Bar {
                x: hour * 12,
                height: count * 60 / max,
                count,
                label: time_text(at).get(11..13).unwrap_or_default().to_owned() + "h",
            }
        })
        .collect();
    json!({ "bars": bars, "max": max, "width": 24 * 12 })
}

/// One scheme's row and card on the overview.
async fn scheme_overview(backend: &Backend, id: &str, files: &str) -> Result<Value, CliError> {
    let now = Timestamp::now();
    let scheme = backend.scheme_def(id)?;
    let cursor = backend.cursor(id).await?;
    let mut records: BTreeMap<&'static str, u64> =
        RecordState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for (state, n) in backend.counts(id).await? {
        records.insert(state.as_str(), n);
    }
    let (queued, dead_letters) = backend.queue_figures(id).await?;
    let synced = backend.recent(id, RecordState::Synced, 100_000).await?;
    let last_hour = synced
        .iter()
        .filter(|r| now.duration_since(r.updated_at) < SignedDuration::from_hours(1))
        .count() as u64;
    let limit = scheme.push.rate_limit;
    // A push is at least one call: pushes over the hour's calls allowed, in percent.
    let rate_use = limit.map(|l| last_hour * 100 / (u64::from(l) * 60).max(1));
    let audit: Vec<Value> = backend
        .audit_log(id, 10)
        .await?
        .into_iter()
        .rev()
        .map(|e| json!({ "at": time_text(e.at), "detail": e.detail }))
        .collect();
    Ok(json!({
        "id": id,
        "name": scheme.config.name,
        "files": files,
        "cursor": cursor.position.map(time_text),
        "lag": cursor.position.map(|p| lag((now - p).get_seconds())),
        "records": records,
        "queued": queued,
        "dead_letters": dead_letters,
        "limit": limit,
        "rate_use": rate_use,
        "chart": chart(&synced, now),
        "audit": audit,
    }))
}

/// `/`: every scheme's cursor and lag, records by state, queue and dead letters, pushes per hour,
/// the target's rate-limit use, its actions and its audit log.
pub async fn overview(State(console): State<Shared>, Query(query): Query<PageQuery>) -> Response {
    let backend = console.backend().await;
    let lang = query.lang();
    let result = async {
        let files: HashMap<String, String> = backend.files().await?.into_iter().collect();
        let mut schemes = Vec::new();
        for id in backend.scheme_ids() {
            let version = files.get(&id).cloned().unwrap_or_default();
            schemes.push(scheme_overview(&backend, &id, &version).await?);
        }
        Ok::<_, CliError>(schemes)
    }
    .await;
    match result {
        Ok(schemes) => render(
            &console,
            &backend,
            lang,
            "overview.html",
            json!({ "schemes": schemes }),
        ),
        Err(e) => failure(&console, &backend, lang, &e),
    }
}

/// `/failures/{scheme}`: failed and conflicting documents grouped by reason, most frequent first.
pub async fn failures(
    State(console): State<Shared>,
    Path(scheme): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let backend = console.backend().await;
    let lang = query.lang();
    let result = async {
        let scheme = backend.scheme(&scheme)?;
        // Reasons that differ only in their numbers (a bill id, a version) are one reason.
        let mut groups: BTreeMap<(String, String), Vec<SyncRecord>> = BTreeMap::new();
        for state in [RecordState::Failed, RecordState::Conflict] {
            for record in backend.list(&scheme, Some(state), 10_000).await? {
                let reason: String = record
                    .last_error
                    .as_deref()
                    .unwrap_or_default()
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .collect();
                groups
                    .entry((state.as_str().to_owned(), reason))
                    .or_default()
                    .push(record);
            }
        }
        let mut groups: Vec<Value> = groups
            .into_iter()
            .map(|((state, _), records)| {
                json!({
                    "state": label(lang, &state),
                    // A conflict is a person's decision: not selected for a replay unless chosen.
                    "selected": state == RecordState::Failed.as_str(),
                    "reason": records[0].last_error.clone().unwrap_or_default(),
                    "count": records.len(),
                    "records": records.iter().map(|r| json!({
                        "key": r.key,
                        "number": r.number,
                        "at": time_text(r.updated_at),
                        "attempts": r.attempts,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g["count"].as_u64().unwrap_or(0)));
        Ok::<_, CliError>(json!({ "scheme": scheme, "groups": groups }))
    }
    .await;
    match result {
        Ok(page) => render(&console, &backend, lang, "failures.html", page),
        Err(e) => failure(&console, &backend, lang, &e),
    }
}

/// `/doc?scheme=&key=`: the search box, to the document's page.
pub async fn find(Query(query): Query<PageQuery>) -> Response {
    let scheme = query.scheme.clone().unwrap_or_default();
    let key = query.key.clone().unwrap_or_default();
    let path: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("lang", query.lang().code())
        .finish();
    let encode =
        |s: &str| -> String { form_urlencoded::byte_serialize(s.trim().as_bytes()).collect() };
    Redirect::to(&format!("/doc/{}/{}?{path}", encode(&scheme), encode(&key))).into_response()
}

/// `/doc/{scheme}/{key}`: a document by key or number: its record, its history as a timeline, the
/// exact body last sent, and what the mapping makes of the source's document now.
pub async fn document(
    State(console): State<Shared>,
    Path((scheme, key)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Response {
    let lang = query.lang();
    // The preview maps with the files as they are now (a value map fixed a moment ago).
    if let Err(e) = console.reload().await {
        let backend = console.backend().await;
        return failure(&console, &backend, lang, &e);
    }
    let backend = console.backend().await;
    let result = async {
        let scheme = backend.scheme(&scheme)?;
        let Some(record) = backend.find_record(&scheme, &key).await? else {
            return Err(CliError::user(format!(
                "{scheme} has no record of '{key}': it was never fetched"
            )));
        };
        let history = backend.history(&scheme, &record.key, 500).await?;
        let sent = history
            .iter()
            .rev()
            .find_map(|e| e.body.as_deref())
            .map(pretty);
        let (preview, preview_error) = preview(&backend, &scheme, &record, lang).await;
        let history: Vec<Value> = history
            .iter()
            .map(|e| {
                json!({
                    "at": time_text(e.at),
                    "what": e.what,
                    "detail": e.detail,
                    "target_id": e.target_id,
                })
            })
            .collect();
        Ok(json!({
            "scheme": scheme,
            "record": {
                "key": record.key,
                "state": record.state.as_str(),
                "number": record.number,
                "target_id": record.target_id,
                "version": record.version,
                "attempts": record.attempts,
                "last_error": record.last_error,
            },
            "history": history,
            "sent": sent,
            "preview": preview,
            "preview_error": preview_error,
        }))
    }
    .await;
    match result {
        Ok(page) => render(&console, &backend, lang, "document.html", page),
        Err(e) => failure(&console, &backend, lang, &e),
    }
}

/// A JSON text, indented for reading.
fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .map(|v| format!("{v:#}"))
        .unwrap_or_else(|_| text.to_owned())
}

/// The body the scheme's mapping makes now of the source's document, or why there is none.
async fn preview(
    backend: &Backend,
    scheme: &str,
    record: &SyncRecord,
    lang: Lang,
) -> (Option<String>, Option<String>) {
    if record.lookup.is_empty() {
        return (None, Some(label(lang, "not_in_source").to_owned()));
    }
    let documents = match backend.source_documents(scheme, &record.lookup).await {
        Ok(documents) => documents,
        Err(e) => return (None, Some(e.message)),
    };
    let Some(document) = documents.first() else {
        return (None, Some(label(lang, "not_in_source").to_owned()));
    };
    let Ok(definition) = backend.scheme_def(scheme) else {
        return (None, None);
    };
    let mapped = definition
        .mapper
        .parse(&document.to_string())
        .map_err(|e| e.to_string())
        .and_then(|doc| definition.mapper.map(&doc).map_err(|e| e.to_string()));
    match mapped {
        Ok(body) => (Some(format!("{body:#}")), None),
        Err(e) => (None, Some(e)),
    }
}

/// A posted form: repeated fields (checked boxes) kept in order.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `keys` fields, each split on whitespace and commas (a textarea or boxes).
    fn keys(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == "keys")
            .flat_map(|(_, v)| {
                v.split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// What a form asks for.
enum Action {
    Replay(Replay),
    Resync(Requeue, String),
    Reconcile(String),
}

impl Action {
    /// The action a form names, or what is wrong with it.
    fn of(form: &Form) -> Result<Action, CliError> {
        let keys = form.keys();
        Ok(match form.get("action").unwrap_or_default() {
            "replay_failed" => Action::Replay(Replay::Failed),
            "redrive" => Action::Replay(Replay::DeadLetters),
            "replay_keys" if !keys.is_empty() => Action::Replay(Replay::Keys(keys)),
            "resync_keys" if !keys.is_empty() => Action::Resync(
                Requeue::Keys {
                    keys: keys.clone(),
                    replay: false,
                },
                keys.join(", "),
            ),
            "resync_window" => {
                let (from, to) = (
                    form.get("from").unwrap_or_default(),
                    form.get("to").unwrap_or_default(),
                );
                Action::Resync(
                    Requeue::Window(actions::window(from, to)?),
                    format!("{from} → {to}"),
                )
            }
            "reconcile" => {
                let day = form.get("day").unwrap_or_default().trim().to_owned();
                actions::window(&day, &day)?;
                Action::Reconcile(day)
            }
            "replay_keys" | "resync_keys" => {
                return Err(CliError::user("choose at least one document"));
            }
            other => return Err(CliError::user(format!("no such action '{other}'"))),
        })
    }

    /// What it does, in words, for the confirmation, the result and the audit log.
    fn describe(&self, lang: Lang) -> String {
        match self {
            Action::Replay(Replay::Failed) => label(lang, "replay_failed").to_owned(),
            Action::Replay(Replay::DeadLetters) => label(lang, "redrive").to_owned(),
            Action::Replay(Replay::Keys(keys)) => {
                format!("{}: {}", label(lang, "replay_selected"), keys.join(", "))
            }
            Action::Resync(Requeue::Window(_), what) => {
                format!("{}: {what}", label(lang, "resync_window"))
            }
            Action::Resync(_, what) => format!("{}: {what}", label(lang, "resync_keys")),
            Action::Reconcile(day) => format!("{}: {day}", label(lang, "reconcile")),
        }
    }
}

/// `POST /actions/{scheme}`: checks the anti-forgery token, then asks for a confirmation; a
/// confirmed action runs, is written to the scheme's audit log with who and when, and its result
/// is shown.
pub async fn action(
    State(console): State<Shared>,
    Path(scheme): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = query.lang();
    let form = Form::parse(&body);
    if !same_origin(&console, &headers, form.get("csrf")) {
        let backend = console.backend().await;
        return message(
            &console,
            &backend,
            lang,
            StatusCode::FORBIDDEN,
            label(lang, "forbidden"),
            "",
        );
    }
    let action = match Action::of(&form) {
        Ok(action) => action,
        Err(e) => {
            let backend = console.backend().await;
            return failure(&console, &backend, lang, &e);
        }
    };
    let summary = action.describe(lang);
    if form.get("confirmed") != Some("yes") {
        let backend = console.backend().await;
        let fields: Vec<(String, String)> = form
            .0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "confirmed" | "nonce"))
            .cloned()
            .collect();
        return render(
            &console,
            &backend,
            lang,
            "confirm.html",
            json!({
                "scheme": scheme,
                "summary": summary,
                "fields": fields,
                "nonce": console.nonce(),
            }),
        );
    }
    // Each confirmation runs once: a reload of the result, or a second click, finds its token used.
    if !console.consume(form.get("nonce")) {
        let backend = console.backend().await;
        return message(
            &console,
            &backend,
            lang,
            StatusCode::CONFLICT,
            label(lang, "already_done"),
            "",
        );
    }
    // The embedded default reads its files again first: a value map fixed a moment ago is what
    // the replay maps with.
    if let Err(e) = console.reload().await {
        let backend = console.backend().await;
        return failure(&console, &backend, lang, &e);
    }
    let backend = console.backend().await;
    // The audit log is read by the team, in Chinese whatever the page's language.
    let what = action.describe(Lang::Zh);
    // Each arm gives the page and how it ended, for the audit log.
    let result = async {
        let scheme = backend.scheme(&scheme)?;
        Ok::<_, CliError>(match action {
            Action::Replay(what) => {
                let report = backend.replay(&scheme, &what).await;
                let ended = actions::outcome(&report);
                (json!({ "scheme": scheme, "report": report? }), ended)
            }
            Action::Resync(what, _) => {
                let report = backend.resync(&scheme, what).await;
                let ended = actions::outcome(&report);
                (json!({ "scheme": scheme, "report": report? }), ended)
            }
            Action::Reconcile(day) => {
                let range = actions::window(&day, &day)?;
                let reconciliation = backend.reconcile(&scheme, range).await?;
                let ended = format!("完成：差异 {}", reconciliation.differences.len());
                (
                    json!({ "scheme": scheme, "reconciliation": reconciliation }),
                    ended,
                )
            }
        })
    }
    .await;
    // The audit log says who did what, when, and how it ended.
    let outcome = match &result {
        Ok((_, ended)) => ended.clone(),
        Err(e) => format!("失败：{e}"),
    };
    if let Err(e) = backend
        .audit(
            &scheme,
            &console.options.operator,
            &format!("{what} → {outcome}"),
        )
        .await
    {
        return failure(&console, &backend, lang, &e);
    }
    match result {
        Ok((mut page, _)) => {
            page["summary"] = Value::String(summary);
            let mut response = render(&console, &backend, lang, "result.html", page);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
            response
        }
        Err(e) => failure(&console, &backend, lang, &e),
    }
}

impl Console {
    /// Loads the configuration again (the embedded default only: a deployment's functions run
    /// the files it deployed).
    async fn reload(&self) -> Result<(), CliError> {
        if !self.backend().await.is_local() {
            return Ok(());
        }
        let path = self.options.config.clone();
        let fresh = tokio::task::spawn_blocking(move || Backend::load(&path))
            .await
            .map_err(|e| CliError::internal(format!("reload: {e}")))??;
        // Requests holding the old backend finish on it; new ones get the fresh one.
        *self.backend.write().await = std::sync::Arc::new(fresh);
        Ok(())
    }
}
