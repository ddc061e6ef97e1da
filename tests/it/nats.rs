//! `nats-server` processes for the tests, on loopback ports the server picks itself.
//!
//! A port picked in advance (bound to port 0, then let go) can be taken by another
//! process before the server binds it: an outgoing connection of a test running beside
//! it takes its local port from the same range. Seen in a run of every lane: a server of
//! the three-server cluster never listened, and its test waited for it in vain. So each
//! server is started with `-p -1` and writes the port it took to a ports file
//! (`--ports_file_dir`), which is read here; a server that ends before it listens is an
//! error with its log, not a wait. A JetStream cluster needs its routes from the start,
//! so its route ports are still picked in advance, and a cluster whose server could not
//! bind one is started again on others (`NatsCluster::start` in cluster.rs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::TIMEOUT;

/// A new, empty directory under the system's temporary directory.
pub(crate) fn temp_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("subactor-{what}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A `nats-server`, stopped when dropped (its JetStream store and files removed).
pub(crate) struct Nats {
    child: Child,
    port: u16,
    store: PathBuf,
    files: PathBuf,
}

impl Nats {
    /// A server with JetStream (stored in a new directory); `extra`: more arguments.
    pub(crate) fn start(extra: &[&str]) -> Nats {
        let store = temp_dir("nats");
        let mut args = vec!["-js".to_owned(), "-sd".to_owned(), store.to_string_lossy().into_owned()];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Nats::spawn(&args, store)
    }

    /// A server whose configuration file `conf` enables JetStream itself (in `store`), so
    /// that the configuration can be reloaded (a reload drops what came from `-js`).
    pub(crate) fn start_configured(conf: &Path, store: PathBuf) -> Nats {
        Nats::spawn(&["-c".to_owned(), conf.to_string_lossy().into_owned()], store)
    }

    /// Server `name` of cluster `cluster`, with JetStream, taking routes on `route_port`
    /// and soliciting routes to `routes` (a JetStream cluster wants them configured from
    /// the start, so its route ports are picked in advance); `Err` (with its log) if it
    /// ended before it listened, as when another process took `route_port` first.
    pub(crate) fn start_clustered(
        name: &str,
        cluster: &str,
        route_port: u16,
        routes: &[String],
    ) -> Result<Nats, String> {
        let store = temp_dir("nats");
        let args = [
            "-js",
            "-sd",
            &store.to_string_lossy(),
            "--server_name",
            name,
            "--cluster_name",
            cluster,
            "--cluster",
            &format!("nats://127.0.0.1:{route_port}"),
            "--routes",
            &routes.join(","),
        ]
        .map(str::to_owned);
        Nats::try_spawn(&args, store)
    }

    fn spawn(args: &[String], store: PathBuf) -> Nats {
        Nats::try_spawn(args, store).unwrap_or_else(|why| panic!("{why}"))
    }

    fn try_spawn(args: &[String], store: PathBuf) -> Result<Nats, String> {
        let files = temp_dir("nats-files");
        let log = std::fs::File::create(files.join("log")).expect("the server's log file");
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(&files)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server must be installed (scripts/test installs Debian's nats-server)");
        let ports_file = files.join(format!("nats-server_{}.ports", child.id()));
        // Killed, and its files removed, however this ends.
        let mut nats = Nats { child, port: 0, store, files };
        let deadline = Instant::now() + TIMEOUT;
        nats.port = loop {
            if let Some(port) = std::fs::read_to_string(&ports_file).ok().as_deref().and_then(port_in) {
                break port;
            }
            if let Ok(Some(status)) = nats.child.try_wait() {
                let log = std::fs::read_to_string(nats.files.join("log")).unwrap_or_default();
                return Err(format!("nats-server {args:?} ended ({status}) before it listened; its log:\n{log}"));
            }
            assert!(Instant::now() < deadline, "nats-server {args:?} wrote no ports file in {TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(10));
        };
        let port = nats.port;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen on {port}, the port it said it took");
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(nats)
    }

    /// Its process id (to signal it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where clients connect.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // JetStream's files (the states kept there run to megabytes).
        let _ = std::fs::remove_dir_all(&self.store);
        let _ = std::fs::remove_dir_all(&self.files);
    }
}

/// The client port of a ports file, which reads
/// `{"nats":["nats://127.0.0.1:4222"],"cluster":["nats://127.0.0.1:6222"]}`; `None`
/// while it is not written whole.
fn port_in(ports_file: &str) -> Option<u16> {
    if !ports_file.trim_end().ends_with('}') {
        return None;
    }
    let after = &ports_file[ports_file.find("\"nats\"")?..];
    let url = after.split('"').nth(3)?;
    url.rsplit(':').next()?.parse().ok()
}

/// A loopback port free now (another process may take it before it is bound: only for
/// what cannot be told to pick its own).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

#[test]
fn a_ports_file_gives_the_client_port_once_written_whole() {
    let text = r#"{"nats":["nats://127.0.0.1:36831"],"cluster":["nats://127.0.0.1:41001"],"monitoring":[]}"#;
    assert_eq!(port_in(text), Some(36831));
    assert_eq!(port_in(r#"{"nats":["nats://127.0.0.1:4222"]}"#), Some(4222));
    // Not written whole yet: no port, rather than the start of one.
    assert_eq!(port_in(r#"{"nats":["nats://127.0.0.1:3"#), None);
    assert_eq!(port_in(""), None);
    assert_eq!(port_in(r#"{"cluster":["nats://127.0.0.1:6222"]}"#), None);
}

#[test]
fn a_server_whose_route_port_is_taken_is_an_error_with_its_log_not_a_wait() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").port();
    let started = Instant::now();
    let Err(why) = Nats::start_clustered("s0", "taken", port, &[format!("nats://127.0.0.1:{port}")]) else {
        panic!("nats-server started on a route port another process holds");
    };
    assert!(why.contains("ended"), "{why}");
    assert!(why.contains(&port.to_string()), "the log names the port: {why}");
    assert!(started.elapsed() < TIMEOUT, "it waited {:?}", started.elapsed());
}
