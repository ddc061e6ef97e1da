//! The few system calls of process actors that Rust's standard library and rustix do
//! not wrap safely: the template's parent-death signal, and leaving a forked child.

use std::os::fd::RawFd;

/// Prepares a freshly forked child before it `exec`s the template: it dies with the
/// thread that started it, and keeps `fd` (its control socket) across `exec`.
///
/// Async-signal-safe (runs between `fork` and `exec` of a multi-threaded process).
pub(crate) fn before_exec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: prctl and fcntl are async-signal-safe system calls taking plain integers;
    // `fd` is a descriptor of this process.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Ends this process at once with `code`, without running the exit handlers it
/// inherited (a forked child must not run its template's, nor flush its buffers twice).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process; it takes a plain integer and never returns.
    unsafe { libc::_exit(code) }
}

/// Makes this process die with its parent (a child of the template), or ends it now
/// if the parent (`expected`) has already gone.
pub(crate) fn die_with_parent(expected: i32) {
    if rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL)).is_err()
        || rustix::process::getppid().map(|p| p.as_raw_nonzero().get()) != Some(expected)
    {
        exit_now(1);
    }
}

/// Limits this process's data memory (`RLIMIT_DATA`: the heap and private writable
/// mappings, not shared memory) to `bytes`.
pub(crate) fn limit_memory(bytes: u64) -> std::io::Result<()> {
    let limit = rustix::process::Rlimit { current: Some(bytes), maximum: Some(bytes) };
    rustix::process::setrlimit(rustix::process::Resource::Data, limit).map_err(Into::into)
}

/// Pins this process to `core`: its calling thread and `other`, its only other thread
/// when called (the control thread).
pub(crate) fn pin_to_core(core: usize, other: rustix::thread::Pid) -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    if core >= rustix::thread::CpuSet::MAX_CPU {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no such core"));
    }
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set)?;
    rustix::thread::sched_setaffinity(Some(other), &set).map_err(Into::into)
}

/// Names the calling thread as the system shows it (`/proc/.../comm`, at most 15
/// bytes: longer names are cut, as `std::thread::Builder::name` does).
pub(crate) fn name_this_thread(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|b| *b != 0).take(15).collect();
    while std::str::from_utf8(&bytes).is_err() {
        bytes.pop();
    }
    if let Ok(name) = std::ffi::CString::new(bytes) {
        // Naming is cosmetic: a failure leaves the old name.
        let _ = rustix::thread::set_name(&name);
    }
}
