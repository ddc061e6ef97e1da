//! `nats-server` processes for the tests, on loopback ports the server picks itself
//! (`examples/support/nats_server.rs`, shared with the cluster example and benchmark,
//! says why). Seen in a run of every lane before that: a server of the three-server
//! cluster never listened on a port picked in advance, and its test waited for it in vain.
//! A JetStream cluster needs its routes from the start, so its route ports are still
//! picked in advance, and a cluster whose server could not bind one is started again on
//! others (`NatsCluster::start` in cluster.rs).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::common::TIMEOUT;

#[allow(dead_code, reason = "the example and the benchmark share this file; not every item is used here")]
#[path = "../../examples/support/nats_server.rs"]
mod server;
use server::{NatsServer, jetstream_args};

/// A new, empty directory under the system's temporary directory.
pub(crate) fn temp_dir(what: &str) -> PathBuf {
    server::temp_dir(what).expect("temp dir")
}

/// A `nats-server`, stopped when dropped (its JetStream store and files removed).
pub(crate) struct Nats(NatsServer);

impl Nats {
    /// A server with JetStream (stored in a new directory); `extra`: more arguments.
    pub(crate) fn start(extra: &[&str]) -> Nats {
        let store = temp_dir("nats");
        let mut args = jetstream_args(&store);
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
        let mut args = jetstream_args(&store);
        args.extend(
            [
                "--server_name",
                name,
                "--cluster_name",
                cluster,
                "--cluster",
                &format!("nats://127.0.0.1:{route_port}"),
                "--routes",
                &routes.join(","),
            ]
            .map(str::to_owned),
        );
        NatsServer::start(&args, Some(store), TIMEOUT).map(Nats)
    }

    fn spawn(args: &[String], store: PathBuf) -> Nats {
        // scripts/test installs Debian's nats-server.
        NatsServer::start(args, Some(store), TIMEOUT).map(Nats).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Its process id (to signal it).
    pub(crate) fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Where clients connect.
    pub(crate) fn url(&self) -> String {
        self.0.url()
    }
}

/// A loopback port free now (another process may take it before it is bound: only for
/// what cannot be told to pick its own).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

#[test]
fn a_ports_file_gives_the_client_port_once_written_whole() {
    let text = r#"{"nats":["nats://127.0.0.1:36831"],"cluster":["nats://127.0.0.1:41001"],"monitoring":[]}"#;
    assert_eq!(server::port_in(text), Some(36831));
    assert_eq!(server::port_in(r#"{"nats":["nats://127.0.0.1:4222"]}"#), Some(4222));
    // Not written whole yet: no port, rather than the start of one.
    assert_eq!(server::port_in(r#"{"nats":["nats://127.0.0.1:3"#), None);
    assert_eq!(server::port_in(""), None);
    assert_eq!(server::port_in(r#"{"cluster":["nats://127.0.0.1:6222"]}"#), None);
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
