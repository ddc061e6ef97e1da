//! `fork()` with a runtime open: the child finds the runtime inert (no hang, a clear
//! error), the parent carries on.

use std::time::Duration;

use subactor::{Error, HostError, PythonActor, Runtime, SpawnError, Value};

use crate::common::{TIMEOUT, runtime, spawn};

/// Runs `child` in a forked child and returns its exit status (`_exit(child())`), or
/// `None` if it did not end within [`TIMEOUT`] (then it is killed).
fn in_forked_child(child: impl FnOnce() -> i32) -> Option<i32> {
    // SAFETY: the child only runs `child` (which uses no lock a thread of the parent
    // could hold, by the design under test) and `_exit`s without unwinding.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: ends the child at once, running no destructor or atexit handler.
        unsafe { libc::_exit(code) };
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_forked_child_finds_the_runtime_inert_and_the_parent_carries_on() {
    let rt = runtime();
    let counter = spawn(&rt, "Counter");
    assert_eq!(counter.blocking_ask(1, TIMEOUT).expect("ask"), Value::from(1));
    // Dropped in the child; in the parent, with the unused closure (a normal shutdown).
    let other = runtime();
    let status = in_forked_child(|| {
        let mut failures = 0;
        if !subactor::fork::inherited_runtime() {
            failures |= 1;
        }
        if !matches!(rt.spawn(PythonActor::new("actors", "Counter")), Err(SpawnError::ShutDown)) {
            failures |= 2;
        }
        if !matches!(rt.shutdown(), Err(Error::Host(HostError::ForkedChild(_)))) {
            failures |= 4;
        }
        if !matches!(Runtime::new(), Err(Error::Host(HostError::ForkedChild(_)))) {
            failures |= 8;
        }
        // Dropping one there waits for nothing.
        drop(other);
        failures
    });
    assert_eq!(status, Some(0), "the child's checks (bits of failures), or None if it hung");
    assert_eq!(counter.blocking_ask(1, TIMEOUT).expect("the parent's actor still answers"), Value::from(2));
    rt.shutdown().expect("shutdown");
}
