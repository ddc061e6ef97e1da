//! The template process's loop: it initialises Python once, applies the runtime's
//! configuration (the Python path, the preloaded modules), and forks the children of
//! process actors, keeping spares ready. It is single-threaded and never
//! creates a subinterpreter, so forking it is safe (see `crate::process::template`).
//!
//! A child starts as a fork of this loop: it closes the template's descriptors and
//! becomes the actor's process ([`super::child::run`]).

use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use pyo3_ffi as ffi;
use rustix::event::{PollFd, PollFlags, poll};
use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions, pidfd_open, pidfd_send_signal, waitpid};
use subactor_wire::Channel;
use subactor_wire::LinkError;
use subactor_wire::stream::{self, FrameReader, FrameWriter};
use tracing::{debug, warn};

use super::helpers::Helpers;
use crate::MainModule;
use crate::process::proto::{self, FromTemplate, ToTemplate, no_handles};
use crate::process::sys::exit_now;

/// A forked child: waiting for its actor (a spare), or handed over.
struct Forked {
    pidfd: OwnedFd,
    /// The runtime's ends of its data and control sockets, until it is handed over.
    sockets: Option<(OwnedFd, OwnedFd)>,
}

/// The template's state, all of which a forked child drops.
struct Template {
    link: Option<(FrameWriter, FrameReader)>,
    /// Every child not yet reaped, by pid.
    children: HashMap<i32, Forked>,
    /// Spares lent to the runtime in advance ([`FromTemplate::Spare`]) that it has not
    /// taken yet.
    lent: HashSet<i32>,
    wanted: usize,
    helpers: Rc<Helpers>,
    pid: i32,
}

/// Runs the template on the calling thread, which is the process's only thread; never
/// returns. `embedded`: Python is not initialised yet (a Rust binary taken over before
/// `main`); otherwise the calling thread holds the main interpreter's GIL.
pub(crate) fn run(socket: OwnedFd, embedded: bool) -> ! {
    if embedded {
        // SAFETY: before main, in a process that has not initialised Python.
        if let Err(error) = unsafe { super::process::initialize_attached() } {
            eprintln!("subactor template: {error}");
            exit_now(2);
        }
    }
    // SAFETY: the main interpreter is attached on this, the process's only thread.
    let code = match unsafe { serve(socket) } {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("subactor template: {error}");
            1
        }
    };
    exit_now(code)
}

/// Releases the GIL around `f`.
///
/// # Safety
///
/// An interpreter is attached on this thread.
unsafe fn without_gil<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: attached (contract); restored below on the same thread.
    let tstate = unsafe { ffi::PyEval_SaveThread() };
    let result = f();
    // SAFETY: what PyEval_SaveThread released on this thread.
    unsafe { ffi::PyEval_RestoreThread(tstate) };
    result
}

/// # Safety
///
/// The main interpreter is attached on this thread, the process's only thread.
unsafe fn serve(socket: OwnedFd) -> Result<(), String> {
    let (writer, mut reader) = stream::split(socket, Duration::ZERO).map_err(|e| e.to_string())?;
    let handles = no_handles();
    // SAFETY: attached (contract).
    let mut frame = unsafe { without_gil(|| reader.recv(None)) }.map_err(|e| format!("no configuration: {e}"))?;
    let Ok(ToTemplate::Config(config)) = proto::decode::<ToTemplate>(&mut frame, &handles) else {
        return Err("the first frame is not the configuration".into());
    };
    let ready = |result: Result<(), String>| {
        proto::send(&writer, Channel::Control, &FromTemplate::Ready(result), &handles, &[])
    };
    let main = config.main.map(MainModule::from);
    // SAFETY: attached (contract): the main interpreter.
    let helpers = match unsafe { Helpers::load(&config.python_path, main.as_ref(), false) } {
        Ok(helpers) => Rc::new(helpers),
        Err(exception) => {
            let why = format!("cannot set up Python in the template process: {exception:#}");
            let _ = ready(Err(why.clone()));
            return Err(why);
        }
    };
    // The bootstrap's late parts (bootstrap_late.py), which every child runs at its exit
    // at least: run here, once, so that children inherit them rather than compile and
    // run them again each (18 KB of source: ~1 ms of a child's CPU, spent while the next
    // spawn's child starts).
    // SAFETY: attached (contract).
    if let Err(exception) = unsafe { helpers.call_attr(c"_late", &[]) } {
        let why = format!("cannot set up Python in the template process: {exception:#}");
        let _ = ready(Err(why.clone()));
        return Err(why);
    }
    for module in &config.preload {
        // SAFETY: attached (contract).
        if let Err(exc) = unsafe { helpers.load_module(module) } {
            // SAFETY: attached (contract).
            let (exception, _) = unsafe { helpers.describe(exc) };
            let why = format!("cannot preload {module:?} in the template process: {exception:#}");
            let _ = ready(Err(why.clone()));
            return Err(why);
        }
    }
    // The in-actor module `subactor`, not linked to an actor, built once here: every
    // child inherits it built, where it cost each spare ~165 copy-on-write faults
    // (~0.5 ms of CPU) to build its own. After the preloads, which see what they saw
    // before (the package, or no `subactor` at all).
    // SAFETY: attached (contract).
    if let Err(exception) = unsafe { super::module::install(&helpers) } {
        let why = format!("cannot set up Python in the template process: {exception:#}");
        let _ = ready(Err(why.clone()));
        return Err(why);
    }
    // Everything the template has made, frozen for the children (`freeze_for_fork` in
    // bootstrap_late.py says why): a collection in a child would otherwise copy every page
    // of objects it inherited.
    // SAFETY: attached (contract).
    if let Err(exception) = unsafe { helpers.call_attr(c"freeze_for_fork", &[]) } {
        let why = format!("cannot set up Python in the template process: {exception:#}");
        let _ = ready(Err(why.clone()));
        return Err(why);
    }
    ready(Ok(())).map_err(|e| e.to_string())?;
    let mut template = Template {
        link: Some((writer, reader)),
        children: HashMap::new(),
        lent: HashSet::new(),
        wanted: config.spares,
        helpers,
        pid: rustix::process::getpid().as_raw_nonzero().get(),
    };
    // SAFETY: attached (contract).
    unsafe { template.fill_spares() };
    loop {
        // SAFETY: attached (contract).
        if !unsafe { template.step() }? {
            template.end();
            return Ok(());
        }
    }
}

impl Template {
    fn writer(&self) -> &FrameWriter {
        &self.link.as_ref().unwrap_or_else(|| unreachable!("the template keeps its link")).0
    }

    /// Waits for a request or a child's end and deals with it; `false` once the
    /// runtime has gone.
    ///
    /// # Safety
    ///
    /// The main interpreter is attached on this thread.
    unsafe fn step(&mut self) -> Result<bool, String> {
        let pids: Vec<i32> = self.children.keys().copied().collect();
        let ready: Vec<bool> = {
            let Some((_, reader)) = &self.link else { return Ok(false) };
            let link_fd = reader.as_fd();
            let mut fds = Vec::with_capacity(pids.len() + 1);
            fds.push(PollFd::new(&link_fd, PollFlags::IN));
            for pid in &pids {
                fds.push(PollFd::new(&self.children[pid].pidfd, PollFlags::IN));
            }
            // SAFETY: attached (contract).
            let polled = unsafe { without_gil(|| poll(&mut fds, None)) };
            match polled {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(errno) => return Err(format!("poll failed: {errno}")),
            }
            fds.iter().map(|fd| !fd.revents().is_empty()).collect()
        };
        for (pid, ended) in pids.iter().zip(&ready[1..]) {
            if *ended {
                self.reap(*pid);
            }
        }
        if ready[0] {
            loop {
                let Some((_, reader)) = &mut self.link else { return Ok(false) };
                match reader.try_recv() {
                    Ok(Some(mut frame)) => match proto::decode::<ToTemplate>(&mut frame, &no_handles()) {
                        // SAFETY: attached (contract).
                        Ok(ToTemplate::Spawn { token }) => unsafe { self.hand_over(token) },
                        Ok(ToTemplate::Kill { pid }) => self.kill(pid),
                        Ok(ToTemplate::Took { pid }) => {
                            self.lent.remove(&pid);
                        }
                        Ok(ToTemplate::Config(_)) => warn!("a second configuration for the template: ignored"),
                        Err(error) => return Err(format!("malformed request: {error}")),
                    },
                    Ok(None) => break,
                    Err(LinkError::Closed) => return Ok(false),
                    Err(error) => return Err(format!("the runtime's link failed: {error}")),
                }
            }
        }
        // SAFETY: attached (contract).
        unsafe { self.fill_spares() };
        Ok(true)
    }

    /// Hands a child forked now over for `token` (the runtime asks when it has no
    /// spare lent in advance left).
    ///
    /// # Safety
    ///
    /// The main interpreter is attached on this thread.
    unsafe fn hand_over(&mut self, token: u64) {
        // SAFETY: attached (contract).
        let pid = unsafe { self.fork(false) };
        let handles = no_handles();
        let sent = match pid {
            Ok(pid) => {
                let sockets = self.children.get_mut(&pid).and_then(|child| child.sockets.take());
                match sockets {
                    Some((data, control)) => proto::send(
                        self.writer(),
                        Channel::Control,
                        &FromTemplate::Spawned { token, pid },
                        &handles,
                        &[data.as_fd(), control.as_fd()],
                    ),
                    None => {
                        let error = "a spare child lost its sockets".to_owned();
                        proto::send(
                            self.writer(),
                            Channel::Control,
                            &FromTemplate::SpawnFailed { token, error },
                            &handles,
                            &[],
                        )
                    }
                }
            }
            Err(error) => {
                proto::send(self.writer(), Channel::Control, &FromTemplate::SpawnFailed { token, error }, &handles, &[])
            }
        };
        if let Err(error) = sent {
            warn!(%error, "cannot hand a child over to the runtime");
        }
    }

    /// Keeps `wanted` spares forked and lent to the runtime in advance: a spawn then
    /// starts its actor in one at once, without a round trip to this process.
    ///
    /// # Safety
    ///
    /// The main interpreter is attached on this thread.
    unsafe fn fill_spares(&mut self) {
        while self.lent.len() < self.wanted {
            // SAFETY: attached (contract).
            let pid = match unsafe { self.fork(true) } {
                Ok(pid) => pid,
                Err(error) => {
                    warn!(%error, "cannot fork a spare child");
                    return;
                }
            };
            let Some((data, control)) = self.children.get_mut(&pid).and_then(|child| child.sockets.take()) else {
                return;
            };
            let lent = proto::send(
                self.writer(),
                Channel::Control,
                &FromTemplate::Spare { pid },
                &no_handles(),
                &[data.as_fd(), control.as_fd()],
            );
            // Sent or not, the sockets close here: a spare that was not lent sees its
            // link close and exits.
            drop((data, control));
            if let Err(error) = lent {
                debug!(%error, "cannot lend a spare child: the runtime has gone");
                return;
            }
            self.lent.insert(pid);
        }
    }

    /// Forks a child; in the child, becomes the actor's process and never returns.
    /// `spare`: the child will wait for its actor (lent in advance), rather than be
    /// handed over at once.
    ///
    /// # Safety
    ///
    /// The main interpreter is attached on this thread, the process's only thread.
    unsafe fn fork(&mut self, spare: bool) -> Result<i32, String> {
        let (data, data_child) = stream::socketpair().map_err(|e| format!("cannot make a socket: {e}"))?;
        let (control, control_child) = stream::socketpair().map_err(|e| format!("cannot make a socket: {e}"))?;
        // SAFETY: attached (contract).
        unsafe { self.helpers.flush_std() };
        // SAFETY: attached, on the process's only thread, as os.fork() does it: the GIL
        // is held across fork, and each side restores its state after.
        let pid = unsafe {
            ffi::PyOS_BeforeFork();
            let pid = libc::fork();
            if pid == 0 {
                ffi::PyOS_AfterFork_Child();
            } else {
                ffi::PyOS_AfterFork_Parent();
            }
            pid
        };
        if pid == 0 {
            crate::process::sys::die_with_parent(self.pid);
            let helpers = Rc::clone(&self.helpers);
            // The template's descriptors are not the child's.
            self.link = None;
            self.children.clear();
            self.lent.clear();
            drop((data, control));
            super::child::run(data_child, control_child, helpers, spare);
        }
        if pid < 0 {
            return Err(format!("fork failed: {}", std::io::Error::last_os_error()));
        }
        drop((data_child, control_child));
        let raw = Pid::from_raw(pid).ok_or_else(|| "fork returned pid 0 in the parent".to_owned())?;
        let pidfd = pidfd_open(raw, PidfdFlags::empty()).map_err(|e| format!("pidfd_open failed: {e}"))?;
        self.children.insert(pid, Forked { pidfd, sockets: Some((data, control)) });
        debug!(pid, "forked a child");
        Ok(pid)
    }

    /// Kills a child that has not been reaped.
    fn kill(&self, pid: i32) {
        if let Some(child) = self.children.get(&pid) {
            if let Err(error) = pidfd_send_signal(&child.pidfd, Signal::KILL) {
                debug!(%error, pid, "cannot kill a child");
            }
        }
    }

    /// Reaps a child that has ended and reports it (a spare's too: the runtime drops
    /// it).
    fn reap(&mut self, pid: i32) {
        let Some(raw) = Pid::from_raw(pid) else { return };
        let status = match waitpid(Some(raw), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => status.as_raw(),
            Ok(None) => return,
            Err(error) => {
                warn!(%error, pid, "cannot reap a child");
                self.children.remove(&pid);
                return;
            }
        };
        self.children.remove(&pid);
        if self.lent.remove(&pid) {
            // Killed from outside while it waited, or its actor's start failed (the
            // runtime says `Took` once that start has ended).
            debug!(pid, status, "a lent child ended before the runtime was done with its start");
        }
        let report = FromTemplate::Exited { pid, status };
        if let Err(error) = proto::send(self.writer(), Channel::Control, &report, &no_handles(), &[]) {
            debug!(%error, "cannot report a child's end");
        }
    }

    /// The runtime has gone: kills the children left and reaps them.
    fn end(&mut self) {
        for child in self.children.values() {
            let _ = pidfd_send_signal(&child.pidfd, Signal::KILL);
        }
        for pid in self.children.keys() {
            if let Some(raw) = Pid::from_raw(*pid) {
                let _ = waitpid(Some(raw), WaitOptions::empty());
            }
        }
        self.children.clear();
    }
}
