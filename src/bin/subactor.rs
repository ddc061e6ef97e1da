//! The `subactor` command. `subactor node` runs a worker node of a cluster: a runtime
//! that joins the cluster over NATS and hosts the actors other nodes spawn on it.
//! `subactor top` shows a runtime's actors in the terminal, from its observation
//! endpoint (`Runtime::builder().observe(..)`).
//!
//! ```text
//! subactor top [--url 127.0.0.1:9464] [--interval SECONDS] [--once]
//! ```
//!
//! `top` redraws every `--interval` (1 s) until Ctrl-C; `--once` prints one screen and
//! exits (for scripts). It reads `/api/metrics`, the JSON the live view reads too.
//!
//! ```text
//! subactor node --nats nats://127.0.0.1:4222 --name worker-1 --python-path examples/python
//! ```
//!
//! Options: `--nats URL[,URL...]` (required), `--name NAME` (required), `--cluster
//! NAME` (default `subactor`), `--python-path DIR` (repeatable), `--preload MODULE`
//! (repeatable: imported once in the template of process actors), `--user USER
//! --password PASSWORD`, `--token TOKEN`, `--nkey SEED`, `--creds FILE`, `--trusted`
//! (accept pickled objects from other nodes: only where every node is trusted),
//! `--observe ADDR` (serve the node's metrics and live view there, e.g. `127.0.0.1:9464`).
//!
//! The node prints `node NAME ready` once it has joined, and leaves the cluster when
//! its standard input closes (or on Ctrl-C); killed, it is noticed by the other nodes
//! as down within their heartbeat delay.

use std::io::Read;
use std::process::ExitCode;

#[cfg(feature = "cluster")]
use subactor::{Auth, ClusterConfig, Runtime};

const USAGE: &str = "usage: subactor node --nats URL[,URL...] --name NAME [--cluster NAME] \
[--python-path DIR]... [--preload MODULE]... [--user USER --password PASSWORD | --token TOKEN | --nkey SEED | \
--creds FILE] [--trusted] [--observe HOST:PORT]
       subactor top [--url HOST:PORT] [--interval SECONDS] [--once]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("node") => match node(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("subactor node: {error}");
                ExitCode::from(1)
            }
        },
        Some("top") => match top(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("subactor top: {error}");
                ExitCode::from(1)
            }
        },
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[cfg(not(feature = "observe"))]
fn top(_args: &[String]) -> Result<(), String> {
    Err("this build of subactor has no observation support (the `observe` feature)".into())
}

#[cfg(feature = "observe")]
fn top(args: &[String]) -> Result<(), String> {
    use std::io::Write as _;
    use std::time::Duration;
    use subactor::metrics::top;

    let mut url = "127.0.0.1:9464".to_owned();
    let mut interval = Duration::from_secs(1);
    let mut once = false;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().cloned().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--url" => url = value()?,
            "--interval" => {
                let text = value()?;
                interval = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.05)
                    .map(Duration::from_secs_f64)
                    .ok_or(format!("--interval takes seconds (at least 0.05), not {text:?}"))?;
            }
            "--once" => once = true,
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(160);
    loop {
        let snapshot = top::fetch(&url, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        let screen = top::render(&snapshot, width);
        let mut out = std::io::stdout().lock();
        if once {
            let _ = out.write_all(screen.as_bytes());
            return Ok(());
        }
        // Home, draw, clear what the previous screen left below.
        let _ = write!(out, "\x1b[H\x1b[2J{screen}");
        let _ = out.flush();
        drop(out);
        std::thread::sleep(interval);
    }
}

#[cfg(not(feature = "cluster"))]
fn node(_args: &[String]) -> Result<(), String> {
    Err("this build of subactor has no cluster support (the `cluster` feature)".into())
}

#[cfg(feature = "cluster")]
fn node(args: &[String]) -> Result<(), String> {
    let mut nats = None;
    let mut name = None;
    let mut cluster = None;
    let mut python_path = Vec::new();
    let mut preload = Vec::new();
    let (mut user, mut password, mut token, mut nkey, mut creds) = (None, None, None, None, None);
    let mut trusted = false;
    let mut observe = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().cloned().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--nats" => nats = Some(value()?),
            "--name" => name = Some(value()?),
            "--cluster" => cluster = Some(value()?),
            "--python-path" => python_path.push(value()?),
            "--preload" => preload.push(value()?),
            "--user" => user = Some(value()?),
            "--password" => password = Some(value()?),
            "--token" => token = Some(value()?),
            "--nkey" => nkey = Some(value()?),
            "--creds" => creds = Some(value()?),
            "--trusted" => trusted = true,
            "--observe" => observe = Some(value()?),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    let nats = nats.ok_or(format!("--nats is required\n{USAGE}"))?;
    let name = name.ok_or(format!("--name is required\n{USAGE}"))?;
    let auth = match (user, password, token, nkey, creds) {
        (None, None, None, None, None) => Auth::None,
        (Some(user), Some(password), None, None, None) => Auth::UserPassword { user, password },
        (None, None, Some(token), None, None) => Auth::Token(token),
        (None, None, None, Some(seed), None) => Auth::NKey(seed),
        (None, None, None, None, Some(path)) => Auth::CredentialsFile(path.into()),
        _ => return Err("give one way to authenticate: --user and --password, --token, --nkey or --creds".into()),
    };
    let mut config = ClusterConfig::new([nats], name.clone()).auth(auth).trusted(trusted);
    if let Some(cluster) = cluster {
        config = config.cluster_name(cluster);
    }
    if python_path.is_empty() {
        python_path.push(".".into());
    }
    let mut builder = Runtime::builder().python_path(python_path).preload(preload).cluster(config);
    if let Some(addr) = observe {
        #[cfg(feature = "observe")]
        {
            builder = builder.observe(subactor::ObserveConfig::at(addr));
        }
        #[cfg(not(feature = "observe"))]
        return Err(format!("cannot observe at {addr}: this build has no `observe` feature"));
    }
    let rt = builder.build().map_err(|e| e.to_string())?;
    #[cfg(feature = "observe")]
    if let Some(addr) = rt.observer_addr() {
        println!("observing at http://{addr}/");
    }
    println!("node {name} ready");
    // Runs until standard input closes.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    rt.shutdown().map_err(|e| e.to_string())?;
    Ok(())
}
