//! A [`Metrics`] snapshot as JSON: what the live view, `subactor top` and Python's
//! `rt.metrics()` read.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use subactor_core::ActorId;
use subactor_core::metrics::{ActorMetrics, HistogramSnapshot, Metrics};

use crate::prom::state_name;

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn histogram(h: &HistogramSnapshot) -> Value {
    json!({
        "count": h.count,
        "sum": h.sum,
        "buckets": h.buckets.iter().map(|(bound, n)| json!([bound, n])).collect::<Vec<_>>(),
        "p50": h.quantile(0.5),
        "p99": h.quantile(0.99),
    })
}

/// Message rates between two snapshots: per actor (by id) and for the runtime, in
/// messages per second.
#[derive(Debug, Default, Clone)]
pub struct Rates {
    /// Per actor: handled, failed.
    pub actors: HashMap<ActorId, (f64, f64)>,
    /// The runtime's: handled, failed.
    pub total: (f64, f64),
}

impl Rates {
    /// The rates from `before` to `now` (actors that were not in `before` get none).
    pub fn between(before: &Metrics, now: &Metrics) -> Rates {
        let dt = now.at.duration_since(before.at).map_or(0.0, |d| d.as_secs_f64());
        if dt <= 0.0 {
            return Rates::default();
        }
        let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
        let previous: HashMap<ActorId, &ActorMetrics> = before.actors.iter().map(|a| (a.id, a)).collect();
        let actors = now
            .actors
            .iter()
            .filter_map(|a| {
                let p = previous.get(&a.id)?;
                Some((a.id, (per(a.handled, p.handled), per(a.failed, p.failed))))
            })
            .collect();
        Rates {
            actors,
            total: (per(now.totals.handled, before.totals.handled), per(now.totals.failed, before.totals.failed)),
        }
    }
}

fn actor(a: &ActorMetrics, rates: Option<&Rates>) -> Value {
    let rate = rates.and_then(|r| r.actors.get(&a.id)).copied();
    json!({
        "id": a.id.as_u64(),
        "name": a.name.as_deref(),
        "parent": a.parent.map(ActorId::as_u64),
        "kind": a.kind,
        "placement": a.placement_label(),
        "node": a.node.as_deref(),
        "state": state_name(a),
        "mailbox_depth": a.mailbox_depth,
        "mailbox_capacity": a.mailbox_capacity,
        "handled": a.handled,
        "failed": a.failed,
        "restarts": a.restarts,
        "dead_letters": a.dead_letters,
        "interrupts": a.interrupts,
        "handler_seconds": histogram(&a.handler_time),
        "start_seconds": a.start_time.as_secs_f64(),
        "last_failure": a.last_failure.as_ref().map(|f| json!({"message": &*f.message, "at": seconds(f.at)})),
        "spawned_at": seconds(a.spawned_at),
        "rate": rate.map(|r| r.0),
        "failure_rate": rate.map(|r| r.1),
    })
}

/// The snapshot as JSON, with the rates since an earlier snapshot when there is one.
pub fn snapshot(m: &Metrics, rates: Option<&Rates>) -> Value {
    json!({
        "enabled": m.enabled,
        "at": seconds(m.at),
        "started_at": seconds(m.started_at),
        "actors": m.actors.iter().map(|a| actor(a, rates)).collect::<Vec<_>>(),
        "totals": {
            "handled": m.totals.handled,
            "failed": m.totals.failed,
            "restarts": m.totals.restarts,
            "interrupts": m.totals.interrupts,
            "dead_letters": m.dead_letters,
            "spawned": m.spawned,
            "rate": rates.map(|r| r.total.0),
            "failure_rate": rates.map(|r| r.total.1),
        },
        "spawn_seconds": m.spawn_time.iter().map(|(p, h)| (p.as_str().to_owned(), histogram(h))).collect::<serde_json::Map<_, _>>(),
        "dead_letters": m.recent_dead_letters.iter().map(|d| json!({
            "recipient": d.recipient.as_u64(),
            "name": d.name.as_deref(),
            "reason": format!("{:?}", d.reason),
            "message_type": d.message_type,
            "at": seconds(d.at),
        })).collect::<Vec<_>>(),
    })
}
