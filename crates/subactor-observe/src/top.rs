//! `subactor top`: the live view for a terminal, reading an observation endpoint's
//! `/api/metrics`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

/// Why the endpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// The request failed (nothing listens there, or it answered with an error).
    #[error("cannot read {url}: {why}")]
    Fetch {
        /// What was asked.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// The answer is not a snapshot.
    #[error("{url} did not answer with a subactor snapshot: {why}")]
    NotASnapshot {
        /// What was asked.
        url: String,
        /// What was wrong.
        why: String,
    },
}

/// The URL of the snapshot at an endpoint given as `host:port` or `http://host:port[/]`.
pub fn snapshot_url(endpoint: &str) -> String {
    let base = if endpoint.contains("://") { endpoint.to_owned() } else { format!("http://{endpoint}") };
    format!("{}/api/metrics", base.trim_end_matches('/'))
}

/// Reads one snapshot from the endpoint (see [`snapshot_url`]).
pub fn fetch(endpoint: &str, timeout: Duration) -> Result<Value, TopError> {
    let url = snapshot_url(endpoint);
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).build().into();
    let body = agent
        .get(&url)
        .call()
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| TopError::Fetch { url: url.clone(), why: e.to_string() })?;
    let value: Value =
        serde_json::from_str(&body).map_err(|e| TopError::NotASnapshot { url: url.clone(), why: e.to_string() })?;
    if !value["actors"].is_array() {
        return Err(TopError::NotASnapshot { url, why: "no \"actors\" list".into() });
    }
    Ok(value)
}

fn number(v: &Value) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(n) if n >= 1e6 => format!("{:.2}M", n / 1e6),
        Some(n) if n >= 1e4 => format!("{:.1}k", n / 1e3),
        Some(n) if n.fract() == 0.0 => format!("{n:.0}"),
        Some(n) => format!("{n:.1}"),
    }
}

fn duration(v: &Value) -> String {
    match v.as_f64() {
        None => "-".into(),
        Some(s) if s < 1e-3 => format!("{:.0}us", s * 1e6),
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1e3),
        Some(s) => format!("{s:.2}s"),
    }
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// One screen: the runtime's totals, then the actors as a tree (a supervisor's
/// children under it), `width` columns wide.
pub fn render(snapshot: &Value, width: usize) -> String {
    let mut out = String::new();
    let t = &snapshot["totals"];
    let actors = snapshot["actors"].as_array().map(Vec::as_slice).unwrap_or_default();
    let up = snapshot["at"].as_f64().unwrap_or(0.0) - snapshot["started_at"].as_f64().unwrap_or(0.0);
    let _ = writeln!(
        out,
        "subactor  actors {}  msg/s {}  handled {}  failed {}  restarts {}  dead letters {}  up {:.0}s{}",
        actors.len(),
        number(&t["rate"]),
        number(&t["handled"]),
        number(&t["failed"]),
        number(&t["restarts"]),
        number(&t["dead_letters"]),
        up,
        if snapshot["enabled"] == Value::Bool(false) { "  (metrics off)" } else { "" },
    );
    let _ = writeln!(
        out,
        "{:<28} {:<11} {:<8} {:>11} {:>8} {:>9} {:>7} {:>8} {:>8} {:>4}  LAST FAILURE",
        "ACTOR", "PLACEMENT", "STATE", "MAILBOX", "MSG/S", "HANDLED", "FAILED", "P50", "P99", "RST"
    );
    let ids: Vec<u64> = actors.iter().filter_map(|a| a["id"].as_u64()).collect();
    let mut rows = Vec::new();
    let roots = actors.iter().filter(|a| a["parent"].as_u64().is_none_or(|p| !ids.contains(&p)));
    for root in roots {
        walk(actors, root, String::new(), true, 0, &mut rows);
    }
    for (prefix, a) in rows {
        let label = match a["name"].as_str() {
            Some(name) => name.to_owned(),
            None => format!("#{}", a["id"]),
        };
        let placement = match a["node"].as_str() {
            Some(node) => format!("node {node}"),
            None => a["placement"].as_str().unwrap_or("").to_owned(),
        };
        let failure = a["last_failure"]["message"].as_str().unwrap_or("").replace('\n', " ");
        let line = format!(
            "{:<28} {:<11} {:<8} {:>11} {:>8} {:>9} {:>7} {:>8} {:>8} {:>4}  {}",
            clip(&format!("{prefix}{label}"), 28),
            clip(&placement, 11),
            a["state"].as_str().unwrap_or(""),
            format!("{}/{}", a["mailbox_depth"], a["mailbox_capacity"]),
            number(&a["rate"]),
            number(&a["handled"]),
            number(&a["failed"]),
            duration(&a["handler_seconds"]["p50"]),
            duration(&a["handler_seconds"]["p99"]),
            number(&a["restarts"]),
            failure,
        );
        let _ = writeln!(out, "{}", clip(&line, width));
    }
    if let Some(letters) = snapshot["dead_letters"].as_array().filter(|l| !l.is_empty()) {
        let _ = writeln!(out, "\nlatest dead letters:");
        for d in letters.iter().rev().take(5) {
            let to = d["name"].as_str().map_or_else(|| format!("#{}", d["recipient"]), str::to_owned);
            let _ = writeln!(out, "  {} -> {}", d["reason"].as_str().unwrap_or(""), to);
        }
    }
    out
}

fn walk<'a>(
    actors: &'a [Value],
    actor: &'a Value,
    prefix: String,
    last: bool,
    depth: usize,
    rows: &mut Vec<(String, &'a Value)>,
) {
    let branch =
        if depth == 0 { String::new() } else { format!("{prefix}{}", if last { "└─ " } else { "├─ " }) };
    rows.push((branch, actor));
    let id = actor["id"].as_u64();
    let kids: Vec<&Value> = actors.iter().filter(|a| a["parent"].as_u64() == id && id.is_some()).collect();
    let inner = if depth == 0 { String::new() } else { format!("{prefix}{}", if last { "   " } else { "│  " }) };
    for (i, kid) in kids.iter().enumerate() {
        walk(actors, kid, inner.clone(), i + 1 == kids.len(), depth + 1, rows);
    }
}
