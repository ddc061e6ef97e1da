//! A [`Metrics`] snapshot in the Prometheus text exposition format (version 0.0.4),
//! encoded by the Prometheus client's own encoder.

use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{Encoder as _, TextEncoder};
use subactor_core::metrics::{ActorMetrics, HistogramSnapshot, Metrics};

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A per-actor metric: name, help, value.
type Field = (&'static str, &'static str, fn(&ActorMetrics) -> f64);

/// Encodes `metrics` in the Prometheus text format.
///
/// Per actor (labels `actor_id`, `actor` (its name, or empty), `kind`, `placement`:
/// `thread`, `interpreter`, `process` or `node`, and `node`):
/// `subactor_actor_messages_handled_total`, `_failed_total`, `subactor_actor_restarts_total`,
/// `subactor_actor_dead_letters_total`, `subactor_actor_interrupts_total`,
/// `subactor_actor_mailbox_depth`, `subactor_actor_mailbox_capacity`,
/// `subactor_actor_start_seconds` and the histogram `subactor_actor_handler_seconds`.
/// Per runtime: the same totals without `actor_`, counted over every actor it ran,
/// `subactor_actors` by placement and state, `subactor_actors_spawned_total`,
/// `subactor_dead_letters_total` (also those for actors elsewhere) and the histogram
/// `subactor_spawn_seconds` by placement.
pub fn encode(metrics: &Metrics) -> String {
    let mut families = Vec::new();
    let actors = &metrics.actors;
    let per_actor: [Field; 5] = [
        ("subactor_actor_messages_handled_total", "Messages whose handler ran, failed ones included.", |a| {
            a.handled as f64
        }),
        (
            "subactor_actor_messages_failed_total",
            "Messages whose handler failed (error, panic, kill, time limit).",
            |a| a.failed as f64,
        ),
        ("subactor_actor_restarts_total", "Restarts of the actor.", |a| a.restarts as f64),
        ("subactor_actor_dead_letters_total", "Messages meant for the actor that became dead letters.", |a| {
            a.dead_letters as f64
        }),
        ("subactor_actor_interrupts_total", "Handlers broken into by a kill or a time limit.", |a| a.interrupts as f64),
    ];
    for (name, help, value) in per_actor {
        families.push(family(
            name,
            help,
            MetricType::COUNTER,
            actors.iter().map(|a| with_labels(counter(value(a)), actor_labels(a))).collect(),
        ));
    }
    let gauges: [Field; 3] = [
        ("subactor_actor_mailbox_depth", "Messages waiting in the actor's mailbox.", |a| a.mailbox_depth as f64),
        ("subactor_actor_mailbox_capacity", "The capacity of the actor's mailbox.", |a| a.mailbox_capacity as f64),
        ("subactor_actor_start_seconds", "How long the actor's latest start or restart took.", |a| {
            a.start_time.as_secs_f64()
        }),
    ];
    for (name, help, value) in gauges {
        families.push(family(
            name,
            help,
            MetricType::GAUGE,
            actors.iter().map(|a| with_labels(gauge(value(a)), actor_labels(a))).collect(),
        ));
    }
    families.push(family(
        "subactor_actor_handler_seconds",
        "Handler times (a sample while handlers take under 20 us: one message in 16).",
        MetricType::HISTOGRAM,
        actors.iter().map(|a| with_labels(histogram(&a.handler_time), actor_labels(a))).collect(),
    ));

    let t = &metrics.totals;
    let totals = [
        ("subactor_messages_handled_total", "Messages handled by the runtime's actors.", t.handled),
        ("subactor_messages_failed_total", "Messages whose handler failed.", t.failed),
        ("subactor_restarts_total", "Restarts of the runtime's actors.", t.restarts),
        ("subactor_interrupts_total", "Handlers broken into by a kill or a time limit.", t.interrupts),
        ("subactor_dead_letters_total", "Dead letters recorded by the runtime.", metrics.dead_letters),
        ("subactor_actors_spawned_total", "Actors spawned.", metrics.spawned),
    ];
    for (name, help, value) in totals {
        families.push(family(name, help, MetricType::COUNTER, vec![counter(value as f64)]));
    }
    let mut by_place_state: std::collections::BTreeMap<(&str, &str), u64> = std::collections::BTreeMap::new();
    for a in actors {
        *by_place_state.entry((a.placement_label(), state_name(a))).or_default() += 1;
    }
    families.push(family(
        "subactor_actors",
        "Live actors by placement and state.",
        MetricType::GAUGE,
        by_place_state
            .into_iter()
            .map(|((placement, state), n)| {
                with_labels(gauge(n as f64), vec![("placement", placement.into()), ("state", state.into())])
            })
            .collect(),
    ));
    families.push(family(
        "subactor_spawn_seconds",
        "Time from spawn until the actor runs, by placement.",
        MetricType::HISTOGRAM,
        metrics
            .spawn_time
            .iter()
            .map(|(placement, h)| with_labels(histogram(h), vec![("placement", placement.as_str().into())]))
            .collect(),
    ));
    families.retain(|f| !f.get_metric().is_empty());
    let mut out = Vec::new();
    match TextEncoder::new().encode(&families, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(error) => {
            tracing::warn!(%error, "cannot encode the metrics");
            String::new()
        }
    }
}

/// The name of an actor's state, as labels and the live view spell it.
pub fn state_name(a: &ActorMetrics) -> &'static str {
    match a.state {
        subactor_core::ActorState::Starting => "starting",
        subactor_core::ActorState::Running => "running",
        subactor_core::ActorState::Stopping => "stopping",
        subactor_core::ActorState::Stopped => "stopped",
    }
}

fn actor_labels(a: &ActorMetrics) -> Vec<(&'static str, String)> {
    vec![
        ("actor_id", a.id.as_u64().to_string()),
        ("actor", a.name.as_deref().unwrap_or("").to_owned()),
        ("kind", a.kind.to_owned()),
        ("placement", a.placement_label().to_owned()),
        ("node", a.node.as_deref().unwrap_or("").to_owned()),
    ]
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<proto::Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_owned());
    f.set_help(help.to_owned());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn with_labels(mut metric: proto::Metric, labels: Vec<(&str, String)>) -> proto::Metric {
    metric.set_label(
        labels
            .into_iter()
            .map(|(name, value)| {
                let mut pair = LabelPair::default();
                pair.set_name(name.to_owned());
                pair.set_value(value);
                pair
            })
            .collect(),
    );
    metric
}

fn counter(value: f64) -> proto::Metric {
    let mut c = proto::Counter::default();
    c.set_value(value);
    let mut m = proto::Metric::default();
    m.set_counter(c);
    m
}

fn gauge(value: f64) -> proto::Metric {
    let mut g = proto::Gauge::default();
    g.set_value(value);
    let mut m = proto::Metric::default();
    m.set_gauge(g);
    m
}

fn histogram(h: &HistogramSnapshot) -> proto::Metric {
    let mut p = proto::Histogram::default();
    p.set_sample_count(h.count);
    p.set_sample_sum(h.sum);
    p.set_bucket(
        h.buckets
            .iter()
            .map(|&(bound, count)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(bound);
                b.set_cumulative_count(count);
                b
            })
            .collect(),
    );
    let mut m = proto::Metric::default();
    m.set_histogram(p);
    m
}
