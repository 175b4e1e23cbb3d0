//! sipp (Debian `sip-tester`) playing the MCU's SIP side, from the scenarios
//! in tests/data/sip. Each scenario's header says which `-key` values it
//! needs; [`Sipp::start`] passes `mcu_ip`, `mcu_aport` and `mcu_vport`
//! (unless `extra` gives them).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    // Free for both UDP and TCP at the time of asking.
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() && port < 65_000 {
            return port;
        }
    }
}

pub struct Sipp {
    /// sipp's SIP port on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    tcp: bool,
}

impl Sipp {
    pub fn start(scenario: &Path, tcp: bool, extra: &[&str]) -> Sipp {
        assert!(
            Path::new("/usr/bin/sipp").exists() || which_sipp(),
            "sipp is missing: apt-get install sip-tester"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mp = free_port();
        let mut cmd = Command::new("sipp");
        cmd.current_dir(dir.path())
            .arg("-sf")
            .arg(scenario)
            .args(["-p", &port.to_string(), "-i", "127.0.0.1", "-bind_local"])
            .args([
                "-ci",
                "127.0.0.1",
                "-mi",
                "127.0.0.1",
                "-mp",
                &mp.to_string(),
            ])
            .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-trace_logs", "-log_file", "uas.log", "-trace_stat"])
            .args([
                "-stf",
                "uas_stat.csv",
                "-trace_err",
                "-error_file",
                "uas_err.log",
            ]);
        for (key, value) in [
            ("mcu_ip", "127.0.0.1"),
            ("mcu_aport", "40000"),
            ("mcu_vport", "40002"),
        ] {
            if !extra.contains(&key) {
                cmd.args(["-key", key, value]);
            }
        }
        if tcp {
            cmd.args(["-t", "t1"]);
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot run sipp ({e}): apt-get install sip-tester"),
        };
        let mut sipp = Sipp {
            child,
            port,
            dir,
            tcp,
        };
        sipp.wait_bound();
        sipp
    }

    /// Until sipp holds its SIP port (or has died).
    fn wait_bound(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let busy = if self.tcp {
                TcpListener::bind(("127.0.0.1", self.port)).is_err()
            } else {
                UdpSocket::bind(("127.0.0.1", self.port)).is_err()
            };
            if busy {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sipp exited early ({status}): {}", self.errors());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sipp did not bind its port: {}", self.errors());
    }

    pub fn target(&self) -> String {
        format!("sip:room@127.0.0.1:{}", self.port)
    }

    /// Whether sipp still runs: with `-m 1` it exits once its call is over.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The path of a file in sipp's directory.
    pub fn read_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file sipp wrote in its directory (the `-message_file` of
    /// `-trace_msg`, say); empty when absent.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    pub fn errors(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "error log:\n{}\nmessages:\n{}",
            read("uas_err.log"),
            read("uas.log")
        )
    }

    /// Waits for sipp to finish and checks that it counted one successful
    /// call and no failed one.
    pub async fn expect_success(mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("sipp did not finish: {}", self.errors());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ok, failed) = self.stats();
        assert!(
            status.success() && ok == 1 && failed == 0,
            "sipp: {status}, SuccessfulCall={ok}, FailedCall={failed}; {}",
            self.errors()
        );
    }

    pub fn stats(&self) -> (u64, u64) {
        let csv = std::fs::read_to_string(self.dir.path().join("uas_stat.csv")).unwrap_or_default();
        let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
        let Some(header) = lines.next() else {
            return (0, u64::MAX);
        };
        let Some(last) = lines.next_back() else {
            return (0, u64::MAX);
        };
        let cols: Vec<&str> = header.split(';').collect();
        let vals: Vec<&str> = last.split(';').collect();
        let get = |name: &str| {
            cols.iter()
                .position(|c| *c == name)
                .and_then(|i| vals.get(i))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(u64::MAX)
        };
        (get("SuccessfulCall(C)"), get("FailedCall(C)"))
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn which_sipp() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("sipp").exists()))
}

/// A scenario of tests/data/sip.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip")
        .join(name)
}
