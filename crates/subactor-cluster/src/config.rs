//! [`ClusterConfig`]: how a runtime joins a cluster.

use std::path::PathBuf;
use std::time::Duration;

/// How a node authenticates to NATS.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// A user name and password.
    UserPassword {
        /// The user.
        user: String,
        /// Its password.
        password: String,
    },
    /// A token.
    Token(String),
    /// An NKey seed.
    NKey(String),
    /// A `.creds` file (a JWT and its NKey seed).
    CredentialsFile(PathBuf),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets.
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => write!(f, "UserPassword({user:?}, ***)"),
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::NKey(_) => f.write_str("NKey(***)"),
            Auth::CredentialsFile(path) => write!(f, "CredentialsFile({})", path.display()),
        }
    }
}

/// How a runtime joins a cluster: the NATS servers, its node name, credentials, and the
/// cluster's timing.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub(crate) urls: Vec<String>,
    pub(crate) node: String,
    pub(crate) prefix: String,
    pub(crate) auth: Auth,
    pub(crate) tls_root: Option<PathBuf>,
    pub(crate) require_tls: bool,
    pub(crate) heartbeat: Duration,
    pub(crate) down_after: Duration,
    pub(crate) trusted: bool,
    pub(crate) outbox: usize,
    pub(crate) connect_timeout: Duration,
}

impl ClusterConfig {
    /// Joins the NATS servers at `urls` (`nats://host:port`, comma-separated or one per
    /// item) as the node `node`.
    pub fn new<S: Into<String>>(urls: impl IntoIterator<Item = S>, node: impl Into<String>) -> ClusterConfig {
        ClusterConfig {
            urls: urls
                .into_iter()
                .flat_map(|u| u.into().split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
                .filter(|u| !u.is_empty())
                .collect(),
            node: node.into(),
            prefix: "subactor".into(),
            auth: Auth::None,
            tls_root: None,
            require_tls: false,
            heartbeat: Duration::from_millis(250),
            down_after: Duration::from_millis(1500),
            trusted: false,
            outbox: 4096,
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The cluster's name: nodes of different clusters on the same NATS servers do not
    /// see each other (subjects and the registry are under it). `"subactor"` by default.
    #[must_use]
    pub fn cluster_name(mut self, name: impl Into<String>) -> Self {
        self.prefix = name.into();
        self
    }

    /// The credentials to present to NATS.
    #[must_use]
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Requires TLS, trusting the CA certificates in `root` (a PEM file) besides the
    /// system's.
    #[must_use]
    pub fn tls(mut self, root: Option<PathBuf>) -> Self {
        self.require_tls = true;
        self.tls_root = root;
        self
    }

    /// How often this node says it is alive (250 ms), and how long a node may stay
    /// silent before it is declared down (1.5 s).
    #[must_use]
    pub fn heartbeat(mut self, every: Duration, down_after: Duration) -> Self {
        self.heartbeat = every;
        self.down_after = down_after;
        self
    }

    /// Accepts pickled objects from other nodes. Unpickling runs code: trust every node
    /// (and everyone who can publish on the NATS servers) before turning this on. Off by
    /// default: across nodes only plain values travel, and a pickled one is refused.
    #[must_use]
    pub fn trusted(mut self, trusted: bool) -> Self {
        self.trusted = trusted;
        self
    }

    /// How many calls may wait to be sent to one node (4096): past it, senders wait
    /// (backpressure).
    #[must_use]
    pub fn outbox(mut self, calls: usize) -> Self {
        self.outbox = calls.max(1);
        self
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Checks the configuration; the error names what is wrong.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.urls.is_empty() {
            return Err("no NATS server URL".into());
        }
        let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid(&self.node) {
            return Err(format!("the node name {:?} must be letters, digits, '-' or '_'", self.node));
        }
        if !valid(&self.prefix) {
            return Err(format!("the cluster name {:?} must be letters, digits, '-' or '_'", self.prefix));
        }
        if self.heartbeat.is_zero() || self.down_after <= self.heartbeat {
            return Err("the down delay must be longer than the heartbeat interval".into());
        }
        Ok(())
    }
}
