//! What every integration test needs.

use std::thread;
use std::time::{Duration, Instant};

use subactor::{PyRef, PythonActor, Runtime};

/// Generous: CI machines are shared and slow.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// A runtime whose actors import from `tests/python`.
pub(crate) fn runtime() -> Runtime {
    Runtime::builder()
        .python_path([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python")])
        .build()
        .expect("the runtime starts")
}

/// Spawns `actors.<class>`.
pub(crate) fn spawn(rt: &Runtime, class: &str) -> PyRef {
    rt.spawn(PythonActor::new("actors", class)).expect("the actor starts")
}

/// The number of threads of this process.
pub(crate) fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(Iterator::count).unwrap_or(0)
}

/// This process's resident set size, in KiB.
pub(crate) fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `cond` holds, failing after [`TIMEOUT`].
pub(crate) fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(2));
    }
}
