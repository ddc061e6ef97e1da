//! What the benchmarks share: their command line, and the machine-readable record of
//! their samples that the benchmark suite (`bench/run`) collects.
//!
//! A benchmark run with `--json PATH` writes every series it measured to `PATH`, after
//! its usual human-readable output, which does not change:
//!
//! ```json
//! {"bench": "foundation", "quick": false,
//!  "meta": {"cores": 2, "python": "3.13.0"},
//!  "series": [{"key": "ask.blocking", "x": null, "unit": "s", "samples": [1.1e-6, ...]}]}
//! ```
//!
//! Durations are in seconds (`"unit": "s"`), rates in their own unit (`"msg/s"`);
//! `x` is the series' parameter where it has one (workers, bytes). Samples are raw, in
//! the order measured: the suite computes the statistics, so that every figure of the
//! report comes out of one piece of code.
//!
//! This is a module of the benchmarks (`mod support;`), not a benchmark: Cargo only
//! discovers `benches/*.rs` and `benches/*/main.rs`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// The command line of a benchmark: `--quick` for a short run, `--json PATH` (or
/// `--json=PATH`) to write its samples. Other arguments are ignored: `cargo bench`
/// passes `--bench`.
#[derive(Debug)]
pub(crate) struct Options {
    /// A short run, for use while developing.
    pub(crate) quick: bool,
    /// Where to write the samples, if anywhere.
    pub(crate) json: Option<PathBuf>,
}

impl Options {
    /// Reads the options from the process's arguments.
    pub(crate) fn from_args() -> Result<Options, String> {
        let mut options = Options { quick: false, json: None };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--quick" {
                options.quick = true;
            } else if arg == "--json" {
                options.json = Some(args.next().ok_or("--json needs a path: --json PATH")?.into());
            } else if let Some(path) = arg.strip_prefix("--json=") {
                options.json = Some(path.into());
            }
        }
        Ok(options)
    }
}

/// A JSON value of the record's `meta` object.
#[derive(Debug)]
pub(crate) enum Meta {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
}

impl From<f64> for Meta {
    fn from(value: f64) -> Meta {
        Meta::Number(value)
    }
}

impl From<usize> for Meta {
    fn from(value: usize) -> Meta {
        Meta::Number(value as f64)
    }
}

impl From<i64> for Meta {
    fn from(value: i64) -> Meta {
        Meta::Number(value as f64)
    }
}

impl From<String> for Meta {
    fn from(value: String) -> Meta {
        Meta::Text(value)
    }
}

impl From<&str> for Meta {
    fn from(value: &str) -> Meta {
        Meta::Text(value.to_owned())
    }
}

/// One measured series.
#[derive(Debug)]
struct Series {
    key: String,
    x: Option<f64>,
    unit: &'static str,
    samples: Vec<f64>,
}

/// Everything one benchmark run measured, written as JSON by [`Record::finish`].
#[derive(Debug)]
pub(crate) struct Record {
    bench: &'static str,
    quick: bool,
    json: Option<PathBuf>,
    meta: Vec<(String, Meta)>,
    series: Vec<Series>,
}

impl Record {
    /// An empty record of the benchmark `bench`, with the machine's core count.
    pub(crate) fn new(bench: &'static str, options: &Options) -> Record {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut record =
            Record { bench, quick: options.quick, json: options.json.clone(), meta: Vec::new(), series: Vec::new() };
        record.meta("cores", cores);
        record
    }

    /// Records a fact about the run (the Python version, a workload's size).
    pub(crate) fn meta(&mut self, key: &str, value: impl Into<Meta>) {
        self.meta.push((key.to_owned(), value.into()));
    }

    /// Records a series of durations, in seconds.
    #[allow(dead_code, reason = "not every benchmark measures durations in Rust")]
    pub(crate) fn durations(&mut self, key: &str, x: Option<f64>, samples: &[Duration]) {
        self.values(key, x, "s", samples.iter().map(Duration::as_secs_f64));
    }

    /// Records a series of values in `unit`.
    pub(crate) fn values(
        &mut self,
        key: &str,
        x: Option<f64>,
        unit: &'static str,
        samples: impl IntoIterator<Item = f64>,
    ) {
        self.series.push(Series { key: key.to_owned(), x, unit, samples: samples.into_iter().collect() });
    }

    /// Writes the record where `--json` asked, if it did.
    pub(crate) fn finish(self) -> std::io::Result<()> {
        match &self.json {
            Some(path) => std::fs::write(path, self.to_json()),
            None => Ok(()),
        }
    }

    fn to_json(&self) -> String {
        let mut out = String::new();
        out.push_str("{\"bench\": ");
        push_str(&mut out, self.bench);
        let _ = write!(out, ", \"quick\": {}, \"meta\": {{", self.quick);
        for (i, (key, value)) in self.meta.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_str(&mut out, key);
            out.push_str(": ");
            match value {
                Meta::Number(n) => push_number(&mut out, *n),
                Meta::Text(s) => push_str(&mut out, s),
            }
        }
        out.push_str("},\n\"series\": [");
        for (i, series) in self.series.iter().enumerate() {
            out.push_str(if i > 0 { ",\n" } else { "\n" });
            out.push_str("{\"key\": ");
            push_str(&mut out, &series.key);
            out.push_str(", \"x\": ");
            match series.x {
                Some(x) => push_number(&mut out, x),
                None => out.push_str("null"),
            }
            out.push_str(", \"unit\": ");
            push_str(&mut out, series.unit);
            out.push_str(", \"samples\": [");
            for (j, sample) in series.samples.iter().enumerate() {
                if j > 0 {
                    out.push_str(", ");
                }
                push_number(&mut out, *sample);
            }
            out.push_str("]}");
        }
        out.push_str("\n]}\n");
        out
    }
}

/// Appends `s` as a JSON string.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `n` as a JSON number (`null` when it is not finite, which JSON cannot say).
fn push_number(out: &mut String, n: f64) {
    if n.is_finite() {
        // `{:e}` is the shortest form that reads back as the same f64.
        let _ = write!(out, "{n:e}");
    } else {
        out.push_str("null");
    }
}
