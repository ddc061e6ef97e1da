//! A `nats-server` process on a loopback port it picks itself: the one helper of the
//! cluster example, the cluster benchmark and the tests, each of which includes this file
//! with `#[path]` (it is not an example of its own: Cargo takes only `examples/*.rs` and
//! `examples/*/main.rs` as examples).
//!
//! A port picked here in advance (bound to port 0, then let go) can be taken by another
//! process before the server binds it: an outgoing connection of a program running
//! beside it takes its local port from the same range. So the server is started with
//! `-p -1` and writes the port it took to a ports file (`--ports_file_dir`), which is
//! read here; a server that ends before it listens is an error with its log, not a wait.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server`, killed when dropped, its directories removed.
pub(crate) struct NatsServer {
    child: Child,
    port: u16,
    /// Its ports file and log.
    files: PathBuf,
    /// Removed with it too (a JetStream store).
    store: Option<PathBuf>,
}

impl NatsServer {
    /// Starts `nats-server` on 127.0.0.1, on a client port it picks, with `args` after
    /// this helper's own, and waits (at most `timeout`) until it listens. `store`, if
    /// given, is removed when the server is dropped (its JetStream directory).
    ///
    /// `Err` says why: `nats-server` is not installed, it ended before it listened (its
    /// log is in the error), or it did not listen within `timeout`.
    pub(crate) fn start(args: &[String], store: Option<PathBuf>, timeout: Duration) -> Result<NatsServer, String> {
        let files = temp_dir("nats-files").map_err(|e| format!("cannot make a directory for nats-server: {e}"))?;
        let log =
            std::fs::File::create(files.join("log")).map_err(|e| format!("cannot make nats-server's log: {e}"))?;
        let child = match Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(&files)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&files);
                return Err(format!(
                    "cannot start nats-server ({e}): install Debian's nats-server (`apt-get install nats-server`)"
                ));
            }
        };
        let ports_file = files.join(format!("nats-server_{}.ports", child.id()));
        // Killed, and its files removed, however this ends.
        let mut server = NatsServer { child, port: 0, files, store };
        let deadline = Instant::now() + timeout;
        server.port = loop {
            if let Some(port) = std::fs::read_to_string(&ports_file).ok().as_deref().and_then(port_in) {
                break port;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "nats-server {args:?} ended ({status}) before it listened; its log:\n{}",
                    server.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("nats-server {args:?} wrote no ports file in {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        while std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!("nats-server did not listen on {}, the port it said it took", server.port));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    /// Where clients connect.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Its process id (to signal it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has logged so far (empty if its log cannot be read).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.files.join("log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.files);
        // JetStream's files (the states kept there run to megabytes).
        if let Some(store) = &self.store {
            let _ = std::fs::remove_dir_all(store);
        }
    }
}

/// A new, empty directory under the system's temporary directory, named after `what`,
/// this process and the time.
pub(crate) fn temp_dir(what: &str) -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("subactor-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The arguments that give a server JetStream, stored in `store`.
pub(crate) fn jetstream_args(store: &Path) -> Vec<String> {
    vec!["-js".to_owned(), "-sd".to_owned(), store.to_string_lossy().into_owned()]
}

/// The client port of a ports file, which reads
/// `{"nats":["nats://127.0.0.1:4222"],"cluster":["nats://127.0.0.1:6222"]}`; `None`
/// while it is not written whole.
pub(crate) fn port_in(ports_file: &str) -> Option<u16> {
    if !ports_file.trim_end().ends_with('}') {
        return None;
    }
    let after = &ports_file[ports_file.find("\"nats\"")?..];
    let url = after.split('"').nth(3)?;
    url.rsplit(':').next()?.parse().ok()
}
