//! OpenTelemetry for subactor: trace contexts carried by messages, spans exported over
//! OTLP. Behind the `otel` feature.
//!
//! [`OtelPropagator`] is the [`Propagator`] that reads and sets the OpenTelemetry
//! context of `tracing` spans (through `tracing-opentelemetry`): installed with
//! [`subactor_core::trace::install`], every tell and ask carries its sender's span
//! context, and the handler's `subactor.receive` span is its child. [`init`] does it all
//! for a program: a `tracing` subscriber that logs (`RUST_LOG`, as the examples) and
//! exports spans over OTLP/HTTP to a collector (Jaeger, Tempo, the OpenTelemetry
//! Collector: `http://127.0.0.1:4318` by default), and the propagator.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use subactor_core::trace::{Propagator, TraceContext};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The OpenTelemetry [`Propagator`]: the context of a `tracing` span is that of its
/// OpenTelemetry span (needs `tracing_opentelemetry`'s layer in the subscriber).
#[derive(Debug, Default, Clone, Copy)]
pub struct OtelPropagator;

/// The OpenTelemetry span context of a carried [`TraceContext`] (remote: it came from
/// the sender).
pub fn span_context(context: TraceContext) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(context.trace_id.to_be_bytes()),
        SpanId::from_bytes(context.span_id.to_be_bytes()),
        TraceFlags::new(context.flags),
        true,
        TraceState::default(),
    )
}

/// The [`TraceContext`] of an OpenTelemetry span context, if it is valid.
pub fn trace_context(context: &SpanContext) -> Option<TraceContext> {
    context.is_valid().then(|| TraceContext {
        trace_id: u128::from_be_bytes(context.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(context.span_id().to_bytes()),
        flags: context.trace_flags().to_u8(),
    })
}

impl Propagator for OtelPropagator {
    fn current(&self) -> Option<TraceContext> {
        let span = tracing::Span::current();
        if span.is_none() {
            return None;
        }
        let context = span.context();
        trace_context(context.span().span_context())
    }

    fn set_parent(&self, span: &tracing::Span, parent: TraceContext) {
        let parent = Context::new().with_remote_span_context(span_context(parent));
        if let Err(error) = span.set_parent(parent) {
            tracing::debug!(?error, "cannot set a handler span's parent");
        }
    }
}

/// Why [`init`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The OTLP exporter could not be built.
    #[error("cannot export spans to {endpoint}: {why}")]
    Exporter {
        /// The collector's URL.
        endpoint: String,
        /// Why.
        why: String,
    },
    /// A global `tracing` subscriber was set already (set up yours with
    /// [`layer`] and install [`OtelPropagator`] instead).
    #[error("a tracing subscriber is set already")]
    SubscriberSet,
    /// Spans could not be exported on [`OtelGuard::flush`].
    #[error("cannot export spans: {0}")]
    Flush(String),
}

/// What [`init`] sets up.
#[derive(Clone, Debug)]
pub struct OtelConfig {
    /// The service name spans are exported under (`subactor` by default).
    pub service_name: String,
    /// Where the OTLP/HTTP collector listens (`http://127.0.0.1:4318` by default; the
    /// spans go to `<endpoint>/v1/traces`). `None`: no export (contexts are still
    /// carried, for logs and for other exporters).
    pub endpoint: Option<String>,
    /// What [`init`]'s subscriber logs to standard error when `RUST_LOG` is not set (an
    /// `EnvFilter` directive: `info` by default). Spans are exported whatever it says.
    pub log_filter: String,
}

impl Default for OtelConfig {
    fn default() -> OtelConfig {
        OtelConfig {
            service_name: "subactor".into(),
            endpoint: Some("http://127.0.0.1:4318".into()),
            log_filter: "info".into(),
        }
    }
}

/// Keeps the exporter running; dropping it flushes the spans still batched and shuts the
/// exporter down.
#[derive(Debug)]
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl OtelGuard {
    /// The tracer provider (for spans of the application's own).
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Exports the spans ended so far now (they are otherwise sent in batches, every
    /// few seconds); waits until the collector has them or the export failed.
    pub fn flush(&self) -> Result<(), OtelError> {
        self.provider.force_flush().map_err(|e| OtelError::Flush(e.to_string()))
    }
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::debug!(%error, "the span exporter did not shut down cleanly");
        }
    }
}

/// A tracer provider exporting to `config.endpoint` over OTLP/HTTP (batched, on a
/// thread of the SDK's).
pub fn provider(config: &OtelConfig) -> Result<SdkTracerProvider, OtelError> {
    let resource =
        Resource::builder().with_attributes([KeyValue::new("service.name", config.service_name.clone())]).build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.endpoint {
        use opentelemetry_otlp::WithExportConfig as _;
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .build()
            .map_err(|e| OtelError::Exporter { endpoint: endpoint.clone(), why: e.to_string() })?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    use opentelemetry::trace::TracerProvider as _;
    tracing_opentelemetry::layer().with_tracer(provider.tracer("subactor"))
}

/// Sets up tracing for a program: the global `tracing` subscriber logs to standard
/// error (filtered by `RUST_LOG`, else by [`OtelConfig::log_filter`]) and exports spans
/// of level `info` and up (the handlers' `subactor.receive` spans among them) over OTLP,
/// whatever the log's filter; and messages carry trace contexts ([`OtelPropagator`]).
/// Keep the guard for as long as spans should be exported.
pub fn init(config: &OtelConfig) -> Result<OtelGuard, OtelError> {
    use std::io::IsTerminal as _;
    use tracing_subscriber::Layer as _;
    let provider = provider(config)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_filter));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(filter),
        )
        .with(layer(&provider).with_filter(tracing_subscriber::filter::LevelFilter::INFO))
        .try_init()
        .map_err(|_| OtelError::SubscriberSet)?;
    subactor_core::trace::install(Box::new(OtelPropagator));
    Ok(OtelGuard { provider })
}
