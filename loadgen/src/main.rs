//! `confgate-loadgen`: synthetic members that join conferences through the real flow, publish
//! synthetic Opus/VP8 and subscribe as a browser would, while the generator measures what
//! arrives (packets, bytes, loss, one-way added latency, join time) and what the server spends
//! (CPU time and RSS from /proc).
//!
//! Scenarios:
//! - `s1`: one publisher, the other members watch (one conference);
//! - `s2`: meetings of `--meeting-size`, everyone publishing and watching the others;
//! - `s3`: the MCU direction, plain RTP in and WebRTC out: `--members` viewers, none
//!   publishing, each receiving a stream of synthetic plain RTP the generator sends. On confgate
//!   the conference of `--link` is bound to the generator's SIP UAS at `--mcu-listen`, which
//!   confgate calls once per member; on Janus each viewer watches a Streaming mountpoint the
//!   generator creates and feeds (`--janus-mountpoints`);
//! - `s4`: a join storm: `--members` viewers join one publisher's conference at `--join-rate`,
//!   join time (link to first packet) being the result.
//!
//! Loss is end to end: every payload carries its number in its sender's stream, and a member
//! expects every packet after the first one it received of each stream (`loss`); the loss the
//! forwarded RTP sequence numbers admit to is `loss_seq` (blind to what a server withholds).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use confgate_loadgen::confgate::{self, JoinOptions};
use confgate_loadgen::janus;
use confgate_loadgen::janus_streaming::{self, Mountpoints};
use confgate_loadgen::mcu::{Mcu, McuCounters};
use confgate_loadgen::metrics::{Metrics, ProcSample, Snapshot, proc_sample, quantile};
use confgate_loadgen::payload;
use confgate_loadgen::peer::{MediaShape, Sink, Srtp};
use confgate_loadgen::rx::RxPath;

/// The server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Target {
    /// confgate, through its join links (`--link`).
    Confgate,
    /// Janus's VideoRoom plugin (Streaming plugin for s3) over its WebSocket API
    /// (`--janus-url`); rooms and mountpoints are made by the generator.
    Janus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Scenario {
    S1,
    S2,
    S3,
    S4,
}

/// Drive synthetic WebRTC members through a confgate server and measure the media it forwards.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[arg(long, value_enum, default_value = "confgate")]
    target: Target,
    /// Join links of the conferences to use, such as
    /// http://127.0.0.1:8080/gzbwclient/conference/CODE (one per meeting for s2); confgate only.
    #[arg(long = "link")]
    links: Vec<String>,
    /// Janus's WebSocket API.
    #[arg(long, default_value = "ws://127.0.0.1:8188")]
    janus_url: String,
    /// Janus VideoRoom rooms (s3: Streaming mountpoints) are numbered from this one.
    #[arg(long, default_value_t = 7700)]
    janus_room: u64,
    /// s3 on Janus: one mountpoint per viewer (as confgate has one MCU call per member), or
    /// one for all.
    #[arg(long, value_enum, default_value = "per-member")]
    janus_mountpoints: Mountpoints,
    /// s3 on Janus: the mountpoints' RTP ports, audio at PORT + 4 i and video at PORT + 4 i + 2
    /// for the i-th.
    #[arg(long, default_value_t = 20000)]
    janus_rtp_port: u16,
    /// s3 on Janus: where Janus receives the mountpoints' RTP [default: --bind-ip].
    #[arg(long)]
    janus_rtp_ip: Option<IpAddr>,
    /// s3 on confgate: where the generator's MCU (a SIP UAS over UDP) listens; the conference of
    /// --link must be bound to sip:room@IP:PORT. Its RTP goes out from this IP too.
    #[arg(long, value_name = "IP:PORT")]
    mcu_listen: Option<SocketAddr>,
    #[arg(long, value_enum, default_value = "s1")]
    scenario: Scenario,
    /// Members in all: for s1 and s4 one publisher and the rest watching.
    #[arg(long, default_value_t = 4)]
    members: usize,
    /// Members per meeting (s2).
    #[arg(long, default_value_t = 4)]
    meeting_size: usize,
    /// Joins per second.
    #[arg(long, default_value_t = 20.0)]
    join_rate: f64,
    /// Seconds measured, after every member joined and a settling time.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds between the last join and the measurement.
    #[arg(long, default_value_t = 3)]
    settle: u64,
    /// The one SRTP profile the members offer.
    #[arg(long, value_enum, default_value = "aes-gcm")]
    srtp: Srtp,
    /// How the members' receive-only (subscribe) connections receive: `lean` drives rtc's
    /// sans-I/O connection directly and takes each datagram's arrival time from the kernel
    /// (SO_TIMESTAMPNS), so the generator's own processing adds no latency; `webrtc` is
    /// webrtc-rs's async stack, the time taken when a packet reaches the counting task.
    #[arg(long, value_enum, default_value = "lean")]
    rx: RxPath,
    /// How publish connections send: `lean` drives rtc's sans-I/O connection directly and
    /// stamps, encrypts and sends each packet in one step, so the generator's other tasks add
    /// nothing between the send time in the stamp and the packet's leaving; `webrtc` is
    /// webrtc-rs's async stack, stamped when the sending task hands the packet over.
    #[arg(long, value_enum, default_value = "lean")]
    tx: RxPath,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    #[arg(long, default_value_t = 1000)]
    video_kbps: u32,
    /// Bytes of a full video packet, RTP header included.
    #[arg(long, default_value_t = 1200)]
    packet_bytes: usize,
    #[arg(long, default_value_t = 2)]
    keyframe_secs: u32,
    #[arg(long, default_value_t = 80)]
    audio_bytes: usize,
    /// Video is paced as a browser paces it: at most this many times --video-kbps, in bursts
    /// at most 5 ms apart (libwebrtc's pacing factor is 2.5). 0 sends each frame in one burst.
    #[arg(long, default_value_t = 2.5)]
    pace: f32,
    /// The members' local address.
    #[arg(long, default_value = "127.0.0.1")]
    bind_ip: IpAddr,
    /// The server's process, for its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A name for the server in the results.
    #[arg(long, default_value = "confgate")]
    label: String,
    /// Write the JSON result here (it is also printed last on stdout with --json-stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Serialize)]
struct Second {
    t: u64,
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    /// The least a member received this second.
    member_min_packets: u64,
    /// End to end, from the stamps' counters.
    loss: f64,
    /// From the forwarded RTP sequence numbers.
    loss_seq: f64,
    latency_p50_us: Option<u64>,
    latency_p99_us: Option<u64>,
    server_cpu_us: Option<u64>,
    server_rss_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Summary {
    members_joined: usize,
    members_failed: usize,
    members_receiving: usize,
    rx_packets_per_sec: f64,
    rx_mbit_per_sec: f64,
    tx_packets_per_sec: f64,
    /// End to end: the share of the packets sent, after the first one each member received of
    /// each stream, that never reached it (lost or withheld by the server).
    loss: f64,
    /// The member that lost the most, end to end.
    loss_worst_member: f64,
    /// From the forwarded RTP sequence numbers: what the server's numbering admits to.
    loss_seq: f64,
    /// Packets the generator failed to send (counted as lost by the receivers).
    generator_send_failed: u64,
    latency_p50_us: Option<u64>,
    latency_p99_us: Option<u64>,
    server_cpu_percent: Option<f64>,
    server_cpu_us_per_packet: Option<f64>,
    server_rss_bytes: Option<u64>,
    server_rss_per_member_bytes: Option<f64>,
    /// The generator's own CPU use, % of a core: near 100 it, not the server, is the limit.
    generator_cpu_percent: Option<f64>,
    join_p50_ms: f64,
    join_p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    target: Target,
    label: String,
    scenario: Scenario,
    srtp: &'static str,
    /// The receive path of the subscribe connections (`lean` or `webrtc`).
    rx: RxPath,
    /// The send path of the publish connections.
    tx: RxPath,
    members: usize,
    /// Members per meeting (s2).
    meeting_size: Option<usize>,
    conferences: usize,
    /// s3 on Janus: how the viewers share mountpoints.
    janus_mountpoints: Option<Mountpoints>,
    /// s3 on confgate: what the MCU saw.
    mcu: Option<McuReport>,
    shape: MediaShape,
    duration_secs: u64,
    seconds: Vec<Second>,
    summary: Summary,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli).await {
        Ok(()) => {}
        Err(e) => {
            eprintln!("confgate-loadgen: {e:#}");
            std::process::exit(1);
        }
    }
}

/// The SIP side of s3 on confgate, as the generator's MCU counted it.
#[derive(Debug, Serialize)]
struct McuReport {
    listen: SocketAddr,
    calls_answered: u64,
    calls_acked: u64,
    calls_ended: u64,
    calls_refused: u64,
    keyframe_requests_info: u64,
    keyframe_requests_rtcp: u64,
}

impl McuReport {
    fn of(mcu: &Mcu) -> McuReport {
        let c: &McuCounters = &mcu.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        McuReport {
            listen: mcu.local_addr(),
            calls_answered: get(&c.answered),
            calls_acked: get(&c.acked),
            calls_ended: get(&c.ended),
            calls_refused: get(&c.refused),
            keyframe_requests_info: get(&c.info_keyframes),
            keyframe_requests_rtcp: get(&c.rtcp_keyframes),
        }
    }
}

/// A member in its conference, on either server; dropping it leaves.
enum Joined {
    Confgate(confgate::Member),
    Janus(janus::Member),
    JanusViewer(janus_streaming::Viewer),
}

impl Joined {
    async fn connected(&self) -> bool {
        match self {
            Joined::Confgate(m) => m.connected().await,
            Joined::Janus(m) => m.connected().await,
            Joined::JanusViewer(v) => v.connected(),
        }
    }
}

/// Which conference member `i` joins, and whether it publishes. In s3 nobody publishes: the
/// media comes from the MCU (confgate) or the mountpoint (Janus).
fn placement(cli: &Cli, i: usize) -> (usize, bool) {
    match cli.scenario {
        Scenario::S1 | Scenario::S4 => (0, i == 0),
        Scenario::S2 => (i / cli.meeting_size.max(1), true),
        Scenario::S3 => (0, false),
    }
}

/// The Janus mountpoint viewer `i` watches in s3.
fn mountpoint_of(cli: &Cli, i: usize) -> u64 {
    match cli.janus_mountpoints {
        Mountpoints::PerMember => cli.janus_room + i as u64,
        Mountpoints::Shared => cli.janus_room,
    }
}

async fn run(cli: Cli) -> Result<()> {
    let conferences = match cli.scenario {
        Scenario::S1 | Scenario::S3 | Scenario::S4 => 1,
        Scenario::S2 => cli.members.div_ceil(cli.meeting_size.max(1)),
    };
    if cli.scenario == Scenario::S3 && cli.target == Target::Confgate && cli.mcu_listen.is_none() {
        bail!(
            "s3 on confgate needs --mcu-listen IP:PORT (the conference bound to sip:room@IP:PORT)"
        );
    }
    if cli.target == Target::Confgate && cli.links.len() < conferences {
        bail!(
            "{} members in meetings of {} need {conferences} links; {} given",
            cli.members,
            cli.meeting_size,
            cli.links.len()
        );
    }
    let shape = MediaShape {
        fps: cli.fps.max(1),
        video_kbps: cli.video_kbps,
        packet_bytes: cli.packet_bytes,
        keyframe_secs: cli.keyframe_secs,
        audio_bytes: cli.audio_bytes,
        pace: cli.pace,
    };
    let options = JoinOptions {
        bind_ip: cli.bind_ip,
        srtp: cli.srtp,
        shape,
        rx: cli.rx,
        tx: cli.tx,
    };
    let metrics = Arc::new(Metrics::new(cli.members));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        // Benchmark servers run with self-signed certificates.
        .danger_accept_invalid_certs(true)
        .build()
        .context("HTTP client")?;
    let baseline = cli.server_pid.and_then(proc_sample);
    // s3's source, after the baseline: on both servers what it makes (a call's media leg, a
    // mountpoint) is memory per member.
    let mcu = match (cli.scenario, cli.target, cli.mcu_listen) {
        (Scenario::S3, Target::Confgate, Some(listen)) => {
            Some(Mcu::start(listen, shape, Arc::clone(&metrics), 0).await?)
        }
        _ => None,
    };
    let source = match (cli.scenario, cli.target) {
        (Scenario::S3, Target::Janus) => Some(
            janus_streaming::Source::start(
                &cli.janus_url,
                match cli.janus_mountpoints {
                    Mountpoints::PerMember => cli.members,
                    Mountpoints::Shared => 1,
                },
                cli.janus_room,
                cli.janus_rtp_ip.unwrap_or(cli.bind_ip),
                cli.janus_rtp_port,
                cli.bind_ip,
                shape,
                Arc::clone(&metrics),
            )
            .await
            .context("Janus Streaming mountpoints")?,
        ),
        _ => None,
    };
    let bar = progress(&cli, cli.members as u64, "joining");
    say(
        &bar,
        format!(
            "{}: {:?}, {} members in {conferences} conference(s), SRTP {}, receive path {}, send path {}, {}",
            cli.label,
            cli.scenario,
            cli.members,
            cli.srtp.name(),
            cli.rx.name(),
            cli.tx.name(),
            pacing(cli.pace)
        ),
    );

    // Joins at the join rate, each in its own task.
    let started = Instant::now();
    let mut joins = Vec::with_capacity(cli.members);
    for i in 0..cli.members {
        let due = started + Duration::from_secs_f64(i as f64 / cli.join_rate.max(0.1));
        tokio::time::sleep_until(due.into()).await;
        let (conference, publish) = placement(&cli, i);
        let link = cli.links.get(conference).cloned().unwrap_or_default();
        let (target, janus_url, room, s3) = (
            cli.target,
            cli.janus_url.clone(),
            cli.janus_room + conference as u64,
            cli.scenario == Scenario::S3,
        );
        let mountpoint = mountpoint_of(&cli, i);
        let sink = Sink {
            metrics: Arc::clone(&metrics),
            member: i,
            join_started_us: payload::now_us(),
        };
        let (http, options, bar) = (http.clone(), options.clone(), bar.clone());
        joins.push(tokio::spawn(async move {
            let name = format!("load-{i}");
            let member = match target {
                Target::Confgate => confgate::join(&http, &link, &name, publish, &options, sink)
                    .await
                    .map(Joined::Confgate),
                Target::Janus if s3 => {
                    janus_streaming::watch(&janus_url, mountpoint, &options, sink)
                        .await
                        .map(Joined::JanusViewer)
                }
                Target::Janus => janus::join(&janus_url, room, &name, publish, &options, sink)
                    .await
                    .map(Joined::Janus),
            };
            bar.inc(1);
            if let Err(e) = &member {
                say(&bar, format!("member {i}: {e:#}"));
            }
            member
        }));
    }
    let mut members = Vec::new();
    let mut failed = 0;
    for join in joins {
        match join.await {
            Ok(Ok(m)) => members.push(m),
            _ => failed += 1,
        }
    }
    bar.finish_and_clear();
    if members.is_empty() {
        bail!("no member could join");
    }
    tokio::time::sleep(Duration::from_secs(cli.settle)).await;
    let mut connected = 0;
    for m in &members {
        connected += usize::from(m.connected().await);
    }
    if !cli.quiet || connected < members.len() {
        eprintln!(
            "{} of {} members joined, {connected} with their connections up",
            members.len(),
            cli.members
        );
    }

    // The measurement: one sample a second.
    let bar = progress(&cli, cli.duration, "measuring");
    let mut seconds = Vec::new();
    let first = metrics.snapshot();
    let first_proc = cli.server_pid.and_then(proc_sample);
    let own_first = proc_sample(std::process::id());
    let measure_started = Instant::now();
    let mut previous = first.clone();
    let mut previous_proc = first_proc;
    for t in 1..=cli.duration {
        tokio::time::sleep_until((measure_started + Duration::from_secs(t)).into()).await;
        let now = metrics.snapshot();
        let proc_now = cli.server_pid.and_then(proc_sample);
        let d = now.since(&previous);
        let second = Second {
            t,
            rx_packets: d.received,
            rx_bytes: d.member_bytes.iter().sum(),
            tx_packets: d.sent_packets,
            member_min_packets: d.member_packets.iter().copied().min().unwrap_or(0),
            loss: d.loss(),
            loss_seq: d.seq_loss(),
            latency_p50_us: d.latency_quantile(0.5),
            latency_p99_us: d.latency_quantile(0.99),
            server_cpu_us: match (proc_now, previous_proc) {
                (Some(a), Some(b)) => Some(a.cpu_us.saturating_sub(b.cpu_us)),
                _ => None,
            },
            server_rss_bytes: proc_now.map(|p| p.rss_bytes),
        };
        bar.set_message(format!(
            "{} pkt/s in, loss {:.2}%, p99 {}",
            second.rx_packets,
            second.loss * 100.0,
            second
                .latency_p99_us
                .map_or("-".into(), |us| format!("{:.1} ms", us as f64 / 1000.0))
        ));
        bar.inc(1);
        seconds.push(second);
        previous = now;
        previous_proc = proc_now;
    }
    bar.finish_and_clear();
    let whole = previous.since(&first);
    let elapsed = measure_started.elapsed().as_secs_f64().max(0.001);
    let own_cpu = match (own_first, proc_sample(std::process::id())) {
        (Some(a), Some(b)) => Some(b.cpu_us.saturating_sub(a.cpu_us) as f64 / elapsed / 1e4),
        _ => None,
    };
    let mut summary = summarize(
        &cli,
        &metrics,
        &whole,
        elapsed,
        (first_proc, previous_proc),
        baseline,
        members.len(),
        failed,
    );
    summary.generator_cpu_percent = own_cpu;
    let report = Report {
        target: cli.target,
        label: cli.label.clone(),
        scenario: cli.scenario,
        srtp: cli.srtp.name(),
        rx: cli.rx,
        tx: cli.tx,
        members: cli.members,
        meeting_size: (cli.scenario == Scenario::S2).then_some(cli.meeting_size),
        conferences,
        janus_mountpoints: (cli.scenario == Scenario::S3 && cli.target == Target::Janus)
            .then_some(cli.janus_mountpoints),
        mcu: mcu.as_ref().map(McuReport::of),
        shape,
        duration_secs: cli.duration,
        seconds,
        summary,
    };
    print_summary(&report);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(members);
    drop(source);
    drop(mcu);
    // Give the connections a moment to close cleanly.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    cli: &Cli,
    metrics: &Metrics,
    whole: &Snapshot,
    elapsed: f64,
    (first_proc, last_proc): (Option<ProcSample>, Option<ProcSample>),
    baseline: Option<ProcSample>,
    joined: usize,
    failed: usize,
) -> Summary {
    let mut joins = metrics.join_times();
    let cpu_us = match (first_proc, last_proc) {
        (Some(a), Some(b)) => Some(b.cpu_us.saturating_sub(a.cpu_us)),
        _ => None,
    };
    let rx_bytes: u64 = whole.member_bytes.iter().sum();
    Summary {
        members_joined: joined,
        members_failed: failed,
        members_receiving: whole.member_packets.iter().filter(|p| **p > 0).count(),
        rx_packets_per_sec: whole.received as f64 / elapsed,
        rx_mbit_per_sec: rx_bytes as f64 * 8.0 / elapsed / 1e6,
        tx_packets_per_sec: whole.sent_packets as f64 / elapsed,
        loss: whole.loss(),
        loss_worst_member: whole.worst_member_loss(),
        loss_seq: whole.seq_loss(),
        generator_send_failed: whole.send_failed,
        latency_p50_us: whole.latency_quantile(0.5),
        latency_p99_us: whole.latency_quantile(0.99),
        server_cpu_percent: cpu_us.map(|us| us as f64 / elapsed / 1e4),
        server_cpu_us_per_packet: cpu_us
            .filter(|_| whole.received > 0)
            .map(|us| us as f64 / whole.received as f64),
        server_rss_bytes: last_proc.map(|p| p.rss_bytes),
        server_rss_per_member_bytes: match (baseline, last_proc) {
            (Some(a), Some(b)) if cli.members > 0 => {
                Some(b.rss_bytes.saturating_sub(a.rss_bytes) as f64 / cli.members as f64)
            }
            _ => None,
        },
        generator_cpu_percent: None,
        join_p50_ms: quantile(&mut joins, 0.5) as f64 / 1000.0,
        join_p99_ms: quantile(&mut joins, 0.99) as f64 / 1000.0,
    }
}

/// How the video is paced, in words.
fn pacing(pace: f32) -> String {
    if pace > 0.0 {
        format!("video paced at {pace}x its rate")
    } else {
        "video frames in one burst".to_owned()
    }
}

fn print_summary(r: &Report) {
    let s = &r.summary;
    let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_owned(), |v| format!("{v:.2}{unit}"));
    println!(
        "{} {:?} SRTP {}, receive path {}, send path {}, {}: {} members ({} failed, {} receiving) in {} conference(s), {} s",
        r.label,
        r.scenario,
        r.srtp,
        r.rx.name(),
        r.tx.name(),
        pacing(r.shape.pace),
        r.members,
        s.members_failed,
        s.members_receiving,
        r.conferences,
        r.duration_secs
    );
    println!(
        "  received {:.0} pkt/s ({:.1} Mbit/s), sent {:.0} pkt/s",
        s.rx_packets_per_sec, s.rx_mbit_per_sec, s.tx_packets_per_sec,
    );
    println!(
        "  loss end to end {:.3}% (worst member {:.3}%), by sequence numbers {:.3}%{}",
        s.loss * 100.0,
        s.loss_worst_member * 100.0,
        s.loss_seq * 100.0,
        if s.generator_send_failed > 0 {
            format!("; the generator failed to send {}", s.generator_send_failed)
        } else {
            String::new()
        }
    );
    println!(
        "  added latency p50 {} p99 {}; join p50 {:.0} ms p99 {:.0} ms",
        opt(s.latency_p50_us.map(|us| us as f64 / 1000.0), " ms"),
        opt(s.latency_p99_us.map(|us| us as f64 / 1000.0), " ms"),
        s.join_p50_ms,
        s.join_p99_ms
    );
    println!(
        "  server CPU {} of a core, {} per outgoing packet; RSS {} ({} per member)",
        opt(s.server_cpu_percent, "%"),
        opt(s.server_cpu_us_per_packet, " µs"),
        opt(s.server_rss_bytes.map(|b| b as f64 / 1048576.0), " MiB"),
        opt(s.server_rss_per_member_bytes.map(|b| b / 1024.0), " KiB"),
    );
    println!(
        "  generator CPU {} of a core",
        opt(s.generator_cpu_percent, "%")
    );
    if let Some(m) = &r.mcu {
        println!(
            "  MCU at {}: {} calls answered, {} acknowledged, {} hung up, {} refused; keyframe requests: {} INFO, {} RTCP",
            m.listen,
            m.calls_answered,
            m.calls_acked,
            m.calls_ended,
            m.calls_refused,
            m.keyframe_requests_info,
            m.keyframe_requests_rtcp
        );
    }
}

/// A line above the progress bar, or on stderr when there is none (not a terminal).
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn progress(cli: &Cli, len: u64, what: &str) -> ProgressBar {
    if cli.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{what:>9} [{{bar:30}}] {{pos}}/{{len}} {{msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}
