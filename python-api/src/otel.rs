//! OpenTelemetry from Python: `Runtime(otel=...)` starts exporting spans over OTLP/HTTP
//! (once per process: `tracing`'s subscriber and the trace propagator are global), and
//! `subactor.Span` begins a span in the main interpreter, whose context the messages sent
//! inside it carry (the handlers' `subactor.receive` spans are its children).

use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyAny;
use subactor::otel::{OtelConfig, OtelError, OtelGuard};
use subactor::trace::TraceContext;

/// The export this process runs, once started.
struct Export {
    endpoint: String,
    guard: OtelGuard,
}

static EXPORT: Mutex<Option<Export>> = Mutex::new(None);

fn export() -> std::sync::MutexGuard<'static, Option<Export>> {
    EXPORT.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts exporting spans to the OTLP/HTTP collector at `endpoint` (its base URL: spans
/// go to `<endpoint>/v1/traces`) under `service_name`, with a `tracing` subscriber that
/// logs warnings and errors to stderr (`RUST_LOG` overrides); messages carry trace
/// contexts from then on. `False` if this process exports there already; a different
/// endpoint than the one started is a `ValueError`.
#[pyfunction]
pub(crate) fn otel_start(py: Python<'_>, endpoint: String, service_name: String) -> PyResult<bool> {
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let host = endpoint.strip_prefix("http://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') {
        return Err(PyValueError::new_err(format!(
            "otel: {endpoint:?} is not an http:// URL of an OTLP/HTTP collector (such as http://127.0.0.1:4318)"
        )));
    }
    let mut export = export();
    if let Some(running) = export.as_ref() {
        if running.endpoint == endpoint {
            return Ok(false);
        }
        return Err(PyValueError::new_err(format!(
            "otel: this process exports spans to {} already (once per process), not to {endpoint}",
            running.endpoint
        )));
    }
    let config = OtelConfig { service_name, endpoint: Some(endpoint.clone()), log_filter: "warn".into() };
    let guard = py.detach(|| subactor::otel::init(&config)).map_err(|e| match e {
        OtelError::SubscriberSet => PyRuntimeError::new_err(format!(
            "otel: {e} in this process (another library installed a global tracing subscriber)"
        )),
        e => PyValueError::new_err(format!("otel: {e}")),
    })?;
    *export = Some(Export { endpoint, guard });
    Ok(true)
}

/// Exports the spans ended so far now, waiting for the collector (without the GIL);
/// `False` if that failed (the reason is logged) or nothing is exported.
#[pyfunction]
pub(crate) fn otel_flush(py: Python<'_>) -> bool {
    let provider = match export().as_ref() {
        Some(running) => running.guard.provider().clone(),
        None => return false,
    };
    py.detach(|| match provider.force_flush() {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "cannot export spans");
            false
        }
    })
}

/// The collector's URL spans go to, if this process exports them.
#[pyfunction]
pub(crate) fn otel_endpoint() -> Option<String> {
    export().as_ref().map(|running| running.endpoint.clone())
}

/// `subactor.Span(name, traceparent=None)`: a span of the program's own, begun in the
/// main interpreter. Messages sent by this thread while it is entered (`with`) carry its
/// context, so the handlers' spans are its children; it ends (and is exported) when the
/// `with` block ends. With `traceparent` (a W3C header value from an incoming request),
/// it is that remote span's child.
#[pyclass(module = "subactor", name = "Span", unsendable)]
pub(crate) struct Span {
    span: tracing::Span,
    state: SpanState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SpanState {
    New,
    Entered,
    Ended,
}

#[pymethods]
impl Span {
    #[new]
    #[pyo3(signature = (name, traceparent=None))]
    fn new(name: &str, traceparent: Option<&str>) -> PyResult<Span> {
        let parent = match traceparent {
            Some(header) => Some(TraceContext::parse(header).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "not a W3C traceparent (00-<32 hex digits>-<16 hex digits>-<2 hex digits>, ids not zero): {header:?}"
                ))
            })?),
            None => None,
        };
        let span = tracing::info_span!(
            "subactor.span",
            otel.name = name,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty
        );
        if let Some(parent) = parent {
            subactor::trace::set_parent(&span, parent);
        }
        Ok(Span { span, state: SpanState::New })
    }

    fn __enter__(mut slf: PyRefMut<'_, Self>) -> PyResult<PyRefMut<'_, Self>> {
        if slf.state != SpanState::New {
            return Err(PyRuntimeError::new_err("a Span is entered once"));
        }
        slf.span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
        slf.state = SpanState::Entered;
        Ok(slf)
    }

    #[pyo3(signature = (exc_type=None, exc=None, traceback=None))]
    fn __exit__(
        &mut self,
        exc_type: Option<&Bound<'_, PyAny>>,
        exc: Option<&Bound<'_, PyAny>>,
        traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        let _ = (exc_type, traceback);
        if self.state != SpanState::Entered {
            return false;
        }
        if let Some(exc) = exc.filter(|e| !e.is_none()) {
            self.span.record("otel.status_code", "error");
            let message = exc.str().map(|s| s.to_string()).unwrap_or_default();
            self.span.record("otel.status_message", message.as_str());
        }
        self.span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
        // The last handle: the span ends here.
        self.span = tracing::Span::none();
        self.state = SpanState::Ended;
        false
    }

    /// The span's W3C `traceparent` (to pass on to other services), or `None` when
    /// no trace export is running.
    #[getter]
    fn traceparent(&self) -> Option<String> {
        self.span.in_scope(subactor::trace::current).map(|context| context.traceparent())
    }
}
