//! The runtime's side of its template process.
//!
//! Children of process actors are forked from a template: a process started with
//! `exec` (this program's own binary, taken over before `main` by
//! [`super::entry`], or a Python interpreter running the package's entry point),
//! single-threaded, that never creates a subinterpreter (a child forked from a process
//! in which own-GIL interpreters run inherits them only as dead weight: see
//! `crate::fork`). It initialises Python once, imports the
//! preloaded modules, and keeps a spare child forked and waiting, lent to the runtime in
//! advance, so that a spawn only starts its actor in a ready process.
//!
//! One control socket joins the runtime and the template: the template lends spares
//! with their sockets ([`FromTemplate::Spare`]), which the runtime keeps until a spawn
//! takes one (once the actor has started in it, [`ToTemplate::Took`]: the template
//! forks the next, see [`Replacement`]); a spawn that finds
//! none asks for a child ([`ToTemplate::Spawn`]). The runtime asks for kills
//! ([`ToTemplate::Kill`]: only the template can kill a child without racing the reuse
//! of its pid, since only it reaps them); the template reports how each child ended
//! ([`FromTemplate::Exited`]). A thread of the runtime, `subactor-template`, started
//! the template (so the template's parent-death signal is tied to a thread that lives
//! as long as the template) and reads its reports.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use subactor_core::Death;
use subactor_wire::Channel;
use subactor_wire::stream::{self, FrameWriter};
use tracing::{debug, info, warn};

use super::proto::{self, FromTemplate, MainModuleSpec, TemplateConfig, ToTemplate, no_handles};

/// The environment variable that names the template's control socket.
pub(crate) const FD_VAR: &str = "SUBACTOR_TEMPLATE_FD";
/// Set (to `1`) when the template is this program's own binary, taken over before
/// `main`.
pub(crate) const SELF_EXE_VAR: &str = "SUBACTOR_TEMPLATE_SELF_EXE";

/// How long a template may take to start (importing the preloaded modules).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a spawn waits for the template to hand a child over.
const SPAWN_TIMEOUT: Duration = Duration::from_secs(60);

/// How the template process is started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// This program's own binary (`/proc/self/exe`), which subactor takes over before
    /// `main` runs: what a Rust application uses, with no Python package installed.
    SelfExe,
    /// A Python interpreter running `code` with `-c`; the code calls
    /// [`run_template`](crate::run_template) (the Python package does this).
    Python {
        /// The interpreter.
        executable: PathBuf,
        /// The code it runs.
        code: String,
    },
}

/// What a template is started with.
#[derive(Clone, Debug)]
pub(crate) struct TemplateSettings {
    pub(crate) launcher: Launcher,
    pub(crate) python_path: Vec<String>,
    pub(crate) preload: Vec<String>,
    pub(crate) main: Option<MainModuleSpec>,
    pub(crate) spares: usize,
}

/// A child handed over by the template: its pid, and the runtime's ends of its sockets.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) pid: i32,
    pub(crate) data: OwnedFd,
    pub(crate) control: OwnedFd,
}

/// A lent spare taken by a spawn: dropped once the actor has started in it (or failed
/// to), it tells the template ([`ToTemplate::Took`]), which forks the next spare then.
/// Not at once: the fork and the new spare's preparation (~1.5 ms of CPU, most of it
/// copy-on-write faults) would compete for the cores with the actor's start, which
/// is what a spawn waits for. Measured with `cargo bench --bench process` (2 cores,
/// 4 alternations): spawn p50 0.68-0.82 ms deferred vs 0.96-1.75 ms at once. The cost:
/// a spawn that comes right after the last one started may find its spare still
/// preparing (the Python package's template forks and prepares a spare in ~3 ms).
#[derive(Debug)]
pub(crate) struct Replacement {
    template: Arc<Template>,
    pid: i32,
}

impl Drop for Replacement {
    fn drop(&mut self) {
        let took = ToTemplate::Took { pid: self.pid };
        if let Err(error) = proto::send(&self.template.writer, Channel::Control, &took, &no_handles(), &[]) {
            debug!(%error, pid = self.pid, "cannot ask for a spare's replacement: the template has gone");
        }
    }
}

/// How a child ended, once the template has reaped it.
#[derive(Debug, Default)]
pub(crate) struct ChildExit {
    death: Mutex<Option<Death>>,
    known: Condvar,
}

impl ChildExit {
    fn set(&self, death: Death) {
        let mut slot = self.death.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(death);
        }
        self.known.notify_all();
    }

    /// How the child ended, waiting up to `timeout` for the template's report.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Death> {
        let deadline = subactor_core::deadline_after(timeout);
        let mut slot = self.death.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while slot.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            slot = self.known.wait_timeout(slot, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        slot.clone()
    }

    /// How the child ended, if known.
    pub(crate) fn get(&self) -> Option<Death> {
        self.death.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[derive(Default)]
struct State {
    pending: HashMap<u64, flume::Sender<Result<Spawned, String>>>,
    children: HashMap<i32, Arc<ChildExit>>,
    /// Spares lent in advance, oldest first.
    spares: VecDeque<Spawned>,
    /// Spares dropped because they had ended, whose report has not come yet.
    ended_spares: HashSet<i32>,
    /// The template has gone: spawns fail.
    gone: Option<String>,
}

/// A running template process.
pub(crate) struct Template {
    writer: FrameWriter,
    state: Mutex<State>,
    next_token: AtomicU64,
    thread: Mutex<Option<JoinHandle<()>>>,
    pid: u32,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl Template {
    /// Starts a template and waits until it is ready.
    pub(crate) fn start(settings: TemplateSettings) -> Result<Arc<Template>, String> {
        let (ready_tx, ready_rx) = flume::bounded::<Result<Arc<Template>, String>>(1);
        let thread = thread::Builder::new()
            .name("subactor-template".into())
            .spawn(move || run(settings, &ready_tx))
            .map_err(|e| format!("cannot start the template thread: {e}"))?;
        match ready_rx.recv() {
            Ok(Ok(template)) => {
                *lock(&template.thread) = Some(thread);
                Ok(template)
            }
            Ok(Err(error)) => {
                let _ = thread.join();
                Err(error)
            }
            Err(_) => {
                let _ = thread.join();
                Err("the template thread ended while starting the template".into())
            }
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Whether the template still runs.
    pub(crate) fn is_alive(&self) -> bool {
        self.state().gone.is_none()
    }

    /// A child: a spare lent in advance, or one the template forks now. The third part
    /// asks the template for the spare's replacement when it is dropped (see
    /// [`Replacement`]).
    pub(crate) fn spawn(self: &Arc<Self>) -> Result<(Spawned, Arc<ChildExit>, Option<Replacement>), String> {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = flume::bounded(1);
        {
            let mut state = self.state();
            if let Some(why) = &state.gone {
                return Err(why.clone());
            }
            while let Some(spare) = state.spares.pop_front() {
                if stream::hung_up(spare.data.as_fd()) {
                    // It ended (killed from outside, say) and its report has not come
                    // yet: the next one.
                    debug!(pid = spare.pid, "a lent spare has ended: skipped");
                    state.ended_spares.insert(spare.pid);
                    continue;
                }
                let exit = Arc::clone(state.children.entry(spare.pid).or_default());
                let replacement = Replacement { template: Arc::clone(self), pid: spare.pid };
                return Ok((spare, exit, Some(replacement)));
            }
            state.pending.insert(token, tx);
        }
        if let Err(error) =
            proto::send(&self.writer, Channel::Control, &ToTemplate::Spawn { token }, &no_handles(), &[])
        {
            self.state().pending.remove(&token);
            return Err(format!("cannot reach the template process: {error}"));
        }
        let spawned = match rx.recv_timeout(SPAWN_TIMEOUT) {
            Ok(result) => result?,
            Err(_) => {
                self.state().pending.remove(&token);
                return Err(format!("the template process handed no child over within {SPAWN_TIMEOUT:?}"));
            }
        };
        let exit = Arc::clone(self.state().children.entry(spawned.pid).or_default());
        Ok((spawned, exit, None))
    }

    /// Kills a child with SIGKILL (through the template, which alone knows whether the
    /// pid is still that child's).
    pub(crate) fn kill(&self, pid: i32) {
        if let Err(error) = proto::send(&self.writer, Channel::Control, &ToTemplate::Kill { pid }, &no_handles(), &[]) {
            debug!(%error, pid, "cannot ask the template for a kill: it has gone, and the child with it");
        }
    }

    /// Forgets a child whose end has been seen.
    pub(crate) fn forget(&self, pid: i32) {
        self.state().children.remove(&pid);
    }

    /// Stops the template: it kills its remaining children and exits; waits for it.
    pub(crate) fn close(&self) {
        self.writer.shutdown();
        if let Some(thread) = lock(&self.thread).take() {
            if thread.join().is_err() {
                warn!("the template thread panicked");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `subactor-template` thread: starts the template, reports it ready, then reads
/// its reports until it ends, and reaps it.
fn run(settings: TemplateSettings, ready: &flume::Sender<Result<Arc<Template>, String>>) {
    let (mut child, template, mut reader) = match launch(&settings) {
        Ok(started) => started,
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    let _ = ready.send(Ok(Arc::clone(&template)));
    let handles = no_handles();
    let why = loop {
        let mut frame = match reader.recv(None) {
            Ok(frame) => frame,
            Err(error) => break format!("the template process has gone ({error})"),
        };
        let count = frame.fds.len();
        match proto::decode::<FromTemplate>(&mut frame, &handles) {
            Ok(FromTemplate::Spawned { token, pid }) => {
                let mut fds = frame.fds.into_iter();
                let result = match (fds.next(), fds.next()) {
                    (Some(data), Some(control)) => Ok(Spawned { pid, data, control }),
                    _ => Err(format!("the template handed a child over with {count} sockets instead of 2")),
                };
                if let Some(tx) = template.state().pending.remove(&token) {
                    let _ = tx.send(result);
                }
            }
            Ok(FromTemplate::SpawnFailed { token, error }) => {
                if let Some(tx) = template.state().pending.remove(&token) {
                    let _ = tx.send(Err(error));
                }
            }
            Ok(FromTemplate::Spare { pid }) => {
                let mut fds = frame.fds.into_iter();
                match (fds.next(), fds.next()) {
                    (Some(data), Some(control)) => template.state().spares.push_back(Spawned { pid, data, control }),
                    // Its sockets close here: it exits.
                    _ => warn!(pid, count, "the template lent a spare with the wrong number of sockets"),
                }
            }
            Ok(FromTemplate::Exited { pid, status }) => {
                let death = death_of(status);
                debug!(pid, %death, "child process ended");
                let mut state = template.state();
                if let Some(i) = state.spares.iter().position(|spare| spare.pid == pid) {
                    // A spare that ended unused: no actor will see it.
                    state.spares.remove(i);
                } else if !state.ended_spares.remove(&pid) {
                    state.children.entry(pid).or_default().set(death);
                }
            }
            Ok(FromTemplate::Ready(_)) => warn!("the template reported ready twice"),
            Err(error) => break format!("the template process sent a malformed frame: {error}"),
        }
    };
    debug!(%why, "template link closed");
    let children = {
        let mut state = template.state();
        state.gone = Some(why.clone());
        for (_, tx) in state.pending.drain() {
            let _ = tx.send(Err(why.clone()));
        }
        state.spares.clear();
        std::mem::take(&mut state.children)
    };
    // Its children die with it (their parent-death signal).
    for exit in children.values() {
        exit.set(Death::Lost(format!("its template process has gone ({why})").into()));
    }
    template.writer.shutdown();
    match child.wait() {
        Ok(status) => info!(%status, "template process ended"),
        Err(error) => warn!(%error, "cannot reap the template process"),
    }
}

/// Starts the template process and sends it its configuration; waits until it is
/// ready.
fn launch(
    settings: &TemplateSettings,
) -> Result<(std::process::Child, Arc<Template>, subactor_wire::FrameReader), String> {
    let (ours, theirs) = stream::socketpair().map_err(|e| format!("cannot make the template's socket: {e}"))?;
    let fd = theirs.as_raw_fd();
    let mut command = match &settings.launcher {
        Launcher::SelfExe => {
            let mut command = Command::new("/proc/self/exe");
            command.arg0("subactor-template").env(SELF_EXE_VAR, "1");
            command
        }
        Launcher::Python { executable, code } => {
            let mut command = Command::new(executable);
            command.arg("-c").arg(code).env_remove(SELF_EXE_VAR);
            command
        }
    };
    command.env(FD_VAR, fd.to_string()).stdin(Stdio::null()).process_group(0);
    // SAFETY: the closure runs in the forked child before exec; `before_exec` is
    // async-signal-safe.
    unsafe {
        command.pre_exec(move || super::sys::before_exec(fd));
    }
    let mut child = command.spawn().map_err(|e| format!("cannot start the template process: {e}"))?;
    drop(theirs);
    let (writer, mut reader) =
        stream::split(ours, Duration::ZERO).map_err(|e| format!("cannot use the template's socket: {e}"))?;
    let config = TemplateConfig {
        python_path: settings.python_path.clone(),
        preload: settings.preload.clone(),
        main: settings.main.clone(),
        spares: settings.spares,
    };
    let handles = no_handles();
    let fail = |child: &mut std::process::Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        why
    };
    if let Err(error) = proto::send(&writer, Channel::Control, &ToTemplate::Config(config), &handles, &[]) {
        return Err(fail(&mut child, format!("cannot configure the template process: {error}")));
    }
    let mut frame = match reader.recv(Some(Instant::now() + READY_TIMEOUT)) {
        Ok(frame) => frame,
        Err(error) => {
            let _ = child.kill();
            let status = child.wait().map(|s| format!(" ({s})")).unwrap_or_default();
            return Err(format!("the template process did not start: {error}{status}"));
        }
    };
    match proto::decode::<FromTemplate>(&mut frame, &handles) {
        Ok(FromTemplate::Ready(Ok(()))) => {}
        Ok(FromTemplate::Ready(Err(why))) => return Err(fail(&mut child, why)),
        Ok(other) => return Err(fail(&mut child, format!("the template process answered {other:?} at start"))),
        Err(error) => return Err(fail(&mut child, format!("the template process answered badly: {error}"))),
    }
    info!(pid = child.id(), "template process ready");
    let template = Arc::new(Template {
        writer,
        state: Mutex::default(),
        next_token: AtomicU64::new(1),
        thread: Mutex::new(None),
        pid: child.id(),
    });
    Ok((child, template, reader))
}

/// How a process ended, from its raw wait status.
pub(crate) fn death_of(status: i32) -> Death {
    if libc::WIFSIGNALED(status) {
        let number = libc::WTERMSIG(status);
        Death::Signal { number, name: signal_name(number).into(), core_dumped: libc::WCOREDUMP(status) }
    } else if libc::WIFEXITED(status) {
        Death::Exited(libc::WEXITSTATUS(status))
    } else {
        Death::Lost(format!("wait status {status:#x}").into())
    }
}

/// The conventional name of a signal.
pub(crate) fn signal_name(number: i32) -> String {
    let name = match number {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_owned()
}
