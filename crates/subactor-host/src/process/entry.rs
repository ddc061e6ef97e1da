//! How a re-executed binary becomes a template process before its `main` runs.
//!
//! A Rust application that links subactor starts its template by executing its own
//! binary (`/proc/self/exe`) with [`SELF_EXE_VAR`](super::template::SELF_EXE_VAR) set.
//! This constructor runs before `main` in every process of such a binary; unless the
//! variable is set it does nothing. When it is, the process is a template: it
//! initialises Python and serves the runtime until the runtime goes, then exits —
//! `main` never runs. No Python package needs to be installed for this.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::template::{FD_VAR, SELF_EXE_VAR};

#[ctor::ctor(unsafe)]
fn template_entry() {
    if std::env::var_os(SELF_EXE_VAR).is_none() {
        return;
    }
    let fd = std::env::var(FD_VAR).ok().and_then(|fd| fd.parse::<RawFd>().ok());
    // SAFETY: before main, this process has a single thread; nothing else reads the
    // environment now.
    unsafe {
        std::env::remove_var(SELF_EXE_VAR);
        std::env::remove_var(FD_VAR);
    }
    let Some(fd) = fd.filter(|fd| *fd >= 0) else {
        eprintln!("subactor: {SELF_EXE_VAR} is set but {FD_VAR} names no descriptor");
        super::sys::exit_now(2);
    };
    // SAFETY: the runtime that executed this binary passed its template socket as `fd`,
    // open across exec and owned by nobody else in this process.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    crate::ffi::zygote::run(socket, true);
}

/// Runs the template on this (main) thread of a Python process that imported the
/// package's extension: the [`Launcher::Python`](super::Launcher::Python) entry point.
/// Never returns.
pub(crate) fn run_in_python() -> Result<std::convert::Infallible, String> {
    let fd = std::env::var(FD_VAR)
        .ok()
        .and_then(|fd| fd.parse::<RawFd>().ok())
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| format!("{FD_VAR} names no descriptor: this is not a template process"))?;
    // SAFETY: the runtime that started this process passed its template socket as
    // `fd`, open across exec and owned by nobody else in this process.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    crate::ffi::zygote::run(socket, false)
}
