//! [`WarmThread`]: a thread started before the actor it will run, so that a spawn that
//! finds one skips the thread's start and whatever the thread prepared (a Python
//! interpreter, for the host's warm pool).

use std::io;
use std::thread::{self, JoinHandle};

/// The body of an actor's thread, handed to a [`WarmThread`], with the name the
/// actor's own thread would have had (the warm thread's body may take it).
pub struct ThreadJob {
    name: String,
    body: Box<dyn FnOnce() + Send>,
}

impl ThreadJob {
    pub(crate) fn new(name: String, body: Box<dyn FnOnce() + Send>) -> ThreadJob {
        ThreadJob { name, body }
    }

    /// The thread name of the actor (`actor:<name>` or `actor<id>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the actor until it stops for good.
    pub fn run(self) {
        (self.body)();
    }
}

impl std::fmt::Debug for ThreadJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadJob").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A thread started in advance that waits for the one actor it will run (see
/// [`Spawn::warm_thread`](crate::Spawn::warm_thread)).
///
/// Its body gets the receiving end of its job: it prepares whatever it prepares, waits
/// for one [`ThreadJob`] and runs it, and ends. When the `WarmThread` is dropped or
/// [`close`](WarmThread::close)d without a job, the wait ends with an error and the
/// body cleans up.
#[derive(Debug)]
pub struct WarmThread {
    jobs: flume::Sender<ThreadJob>,
    handle: JoinHandle<()>,
}

impl WarmThread {
    /// Starts a thread named `name`, with an actor thread's stack, running `body`.
    pub fn spawn(
        name: String,
        body: impl FnOnce(flume::Receiver<ThreadJob>) + Send + 'static,
    ) -> io::Result<WarmThread> {
        let (jobs, rx) = flume::bounded(1);
        let handle =
            thread::Builder::new().name(name).stack_size(crate::system::ACTOR_STACK_SIZE).spawn(move || body(rx))?;
        Ok(WarmThread { jobs, handle })
    }

    /// Whether the thread has ended (its body returned or panicked).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Hands `job` to the thread; its handle then belongs to the caller. If the thread
    /// no longer waits (it ended), the job comes back.
    pub(crate) fn run(self, job: ThreadJob) -> Result<JoinHandle<()>, ThreadJob> {
        match self.jobs.send(job) {
            Ok(()) => Ok(self.handle),
            Err(flume::SendError(job)) => Err(job),
        }
    }

    /// Ends the wait without a job, without waiting for the thread to end: the caller
    /// joins the handle it gets.
    pub fn dismiss(self) -> JoinHandle<()> {
        drop(self.jobs);
        self.handle
    }

    /// Ends the wait without a job and waits for the thread to end.
    pub fn close(self) {
        drop(self.jobs);
        if self.handle.join().is_err() {
            tracing::warn!("a warm thread panicked");
        }
    }
}
