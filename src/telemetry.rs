//! Logs (tracing) and metrics (Prometheus text on `/metrics`).
//!
//! Metrics are plain atomics owned by each server instance rather than the
//! global `metrics` recorder: tests run several servers in one process, and
//! each must count its own.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber: `RUST_LOG` when set, else `default_filter`.
pub fn init_logging(default_filter: &str) {
    // lapin logs every broker disconnect as an error of its own; the event
    // bus says it once, as a warning with the reason, and reconnects. Asked
    // for by name (`lapin=debug`), lapin speaks again.
    let default_filter = if default_filter.contains("lapin") {
        default_filter.to_string()
    } else {
        format!("{default_filter},lapin=off")
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&default_filter))
        .unwrap_or_else(|_| EnvFilter::new("info,lapin=off"));
    // Logs go to stderr: stdout carries what commands print (links, --json).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The JSON-RPC methods counted by name; anything else counts as `other`.
pub const METHODS: &[&str] = &[
    "auth.http.login",
    "config.getProperties",
    "org.user.createUser",
    "org.user.getUsers",
    "org.user.processIQ",
    "conference.create",
    "conference.get",
    "conference.list",
    "conference.end",
    "conference.bindMcu",
    "conference.unbindMcu",
    "other",
];

#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; METHODS.len()],
    errors: [AtomicU64; METHODS.len()],
    /// Joins that created an account.
    pub joins: AtomicU64,
    /// Join codes or passwords that named no conference.
    pub link_failures: AtomicU64,
    /// Attempts refused by the guess throttle.
    pub throttled: AtomicU64,
}

impl Metrics {
    fn index(method: &str) -> usize {
        METHODS
            .iter()
            .position(|m| *m == method)
            .unwrap_or(METHODS.len() - 1)
    }

    pub fn rpc(&self, method: &str, ok: bool) {
        let i = Self::index(method);
        self.requests[i].fetch_add(1, Relaxed);
        if !ok {
            self.errors[i].fetch_add(1, Relaxed);
        }
    }

    /// Prometheus text exposition. `active_members` are the members joined on
    /// this node; `live_accounts`, read from the store by the caller, the
    /// temporary accounts of live conferences; `streams`, the media plane's
    /// streams when this process serves media.
    pub fn render(
        &self,
        active_members: i64,
        live_accounts: Option<i64>,
        streams: Option<confgate_media::MediaLoad>,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP confgate_rpc_requests_total JSON-RPC requests by method."
        );
        let _ = writeln!(out, "# TYPE confgate_rpc_requests_total counter");
        for (i, m) in METHODS.iter().enumerate() {
            let _ = writeln!(
                out,
                "confgate_rpc_requests_total{{method=\"{m}\"}} {}",
                self.requests[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP confgate_rpc_errors_total JSON-RPC requests answered with an error, by method."
        );
        let _ = writeln!(out, "# TYPE confgate_rpc_errors_total counter");
        for (i, m) in METHODS.iter().enumerate() {
            let _ = writeln!(
                out,
                "confgate_rpc_errors_total{{method=\"{m}\"}} {}",
                self.errors[i].load(Relaxed)
            );
        }
        for (name, help, value) in [
            (
                "confgate_joins_total",
                "Joins through a link that created a temporary account.",
                &self.joins,
            ),
            (
                "confgate_link_failures_total",
                "Join codes or passwords that named no conference.",
                &self.link_failures,
            ),
            (
                "confgate_throttled_total",
                "Attempts refused by the guess throttle.",
                &self.throttled,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP confgate_active_members Members in a conference on this node, reconnecting ones included.\n\
             # TYPE confgate_active_members gauge\nconfgate_active_members {active_members}"
        );
        if let Some(n) = live_accounts {
            let _ = writeln!(
                out,
                "# HELP confgate_live_accounts Temporary accounts of conferences that are live.\n\
                 # TYPE confgate_live_accounts gauge\nconfgate_live_accounts {n}"
            );
        }
        if let Some(load) = streams {
            let _ = writeln!(
                out,
                "# HELP confgate_media_streams Media streams carried: received (tracks published, MCU streams) and sent (copies to subscribers, streams to MCUs).\n\
                 # TYPE confgate_media_streams gauge\n\
                 confgate_media_streams{{direction=\"in\"}} {}\n\
                 confgate_media_streams{{direction=\"out\"}} {}",
                load.incoming, load.outgoing
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method() {
        let m = Metrics::default();
        m.rpc("auth.http.login", true);
        m.rpc("auth.http.login", false);
        m.rpc("no.such", false);
        let text = m.render(
            2,
            Some(3),
            Some(confgate_media::MediaLoad {
                incoming: 4,
                outgoing: 12,
            }),
        );
        assert!(
            text.contains("confgate_rpc_requests_total{method=\"auth.http.login\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("confgate_rpc_errors_total{method=\"auth.http.login\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("confgate_rpc_errors_total{method=\"other\"} 1"),
            "{text}"
        );
        assert!(text.contains("confgate_active_members 2"), "{text}");
        assert!(
            text.contains("confgate_media_streams{direction=\"out\"} 12"),
            "{text}"
        );
        assert!(text.contains("confgate_live_accounts 3"), "{text}");
    }
}
