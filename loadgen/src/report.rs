//! `confgate-bench-report`: reads the JSON results of `confgate-loadgen` runs (confgate and
//! Janus, the same scenarios and SRTP profiles) and puts them side by side: server CPU-µs per
//! outgoing packet, the knee (the most members with loss ≤ 0.5% and p99 added latency ≤ 5 ms),
//! memory per member, join time p50 and p99, each with the ratio confgate/Janus. S2 has rows
//! per meeting size, S3 per member count. Loss is the end-to-end figure of the results
//! (`summary.loss`). Writes one JSON file, a Markdown table and SVG charts.
//!
//!   confgate-bench-report --out bench-results/2026-11-28 RUN.json...
//!
//! `--peer LABEL` compares confgate with the runs labelled LABEL instead of Janus: an earlier
//! build of confgate, say (`run.sh --baseline REV` labels those `before`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;
use serde_json::Value;

/// The knee's limits.
const KNEE_LOSS: f64 = 0.005;
const KNEE_P99_US: u64 = 5_000;

#[derive(Debug, Clone)]
struct Run {
    label: String,
    scenario: String,
    srtp: String,
    members: u64,
    loss: f64,
    p99_us: Option<u64>,
    cpu_us_per_packet: Option<f64>,
    rss_per_member: Option<f64>,
    join_p50_ms: f64,
    join_p99_ms: f64,
    receiving: u64,
}

impl Run {
    fn from_json(v: &Value) -> Option<Run> {
        let s = &v["summary"];
        let scenario = v["scenario"].as_str()?;
        // Meetings of different sizes, and S3's member counts, are different loads.
        let scenario = match (v["meeting_size"].as_u64(), scenario) {
            (Some(k), _) => format!("{scenario} meetings of {k}"),
            (None, "s3") => format!("s3 with {} members", v["members"].as_u64()?),
            (None, _) => scenario.to_owned(),
        };
        Some(Run {
            label: v["label"].as_str()?.to_owned(),
            scenario,
            srtp: v["srtp"].as_str()?.to_owned(),
            members: v["members"].as_u64()?,
            loss: s["loss"].as_f64()?,
            p99_us: s["latency_p99_us"].as_u64(),
            cpu_us_per_packet: s["server_cpu_us_per_packet"].as_f64(),
            rss_per_member: s["server_rss_per_member_bytes"].as_f64(),
            join_p50_ms: s["join_p50_ms"].as_f64()?,
            join_p99_ms: s["join_p99_ms"].as_f64()?,
            receiving: s["members_receiving"].as_u64()?,
        })
    }

    /// Every viewer received, loss and p99 latency within the knee's limits.
    fn healthy(&self) -> bool {
        self.receiving + 1 >= self.members
            && self.loss <= KNEE_LOSS
            && self.p99_us.is_some_and(|p| p <= KNEE_P99_US)
    }
}

/// One row of the side-by-side table.
#[derive(Debug, Clone, Serialize)]
struct Row {
    scenario: String,
    srtp: String,
    metric: String,
    unit: String,
    confgate: Option<f64>,
    peer: Option<f64>,
    /// confgate / the peer.
    ratio: Option<f64>,
    /// Lower is better for this metric.
    lower_is_better: bool,
    /// The value is only a lower bound: the knee is the largest load that server ran (its
    /// sweep found no load beyond it).
    confgate_at_least: bool,
    peer_at_least: bool,
}

/// The knee of `runs` is a lower bound: their largest load was healthy.
fn knee_at_top(runs: &[&Run]) -> bool {
    runs.iter()
        .max_by_key(|r| r.members)
        .is_some_and(|r| r.healthy())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The mean of `f` over the runs that have it.
fn mean(runs: &[&Run], f: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let values: Vec<f64> = runs.iter().filter_map(|r| f(r)).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The most members of a healthy run of the s1 sweep.
fn knee(runs: &[&Run]) -> Option<f64> {
    runs.iter()
        .filter(|r| r.healthy())
        .map(|r| r.members as f64)
        .max_by(f64::total_cmp)
}

fn rows(runs: &[Run], peer: &str) -> Vec<Row> {
    // In scenario order, meetings by size.
    let mut groups: BTreeMap<(String, u64, String, String), Vec<&Run>> = BTreeMap::new();
    for r in runs {
        // The number in "s2 meetings of 8" or "s3 with 32 members", for the order.
        let size = r
            .scenario
            .split(' ')
            .skip(1)
            .find_map(|n| n.parse().ok())
            .unwrap_or(0);
        let base = r.scenario.split(' ').next().unwrap_or("").to_owned();
        groups
            .entry((base, size, r.scenario.clone(), r.srtp.clone()))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((_, _, scenario, srtp), group) in &groups {
        let of = |server: &str| -> Vec<&Run> {
            group
                .iter()
                .copied()
                .filter(|r| r.label.eq_ignore_ascii_case(server))
                .collect()
        };
        let (c, j) = (of("confgate"), of(peer));
        let at_top = (knee_at_top(&c), knee_at_top(&j));
        let mut push =
            |metric: &str, unit: &str, lower: bool, f: &dyn Fn(&[&Run]) -> Option<f64>| {
                let (a, b) = (f(&c), f(&j));
                let (a_bound, b_bound) = if metric.starts_with("knee") {
                    at_top
                } else {
                    (false, false)
                };
                out.push(Row {
                    scenario: scenario.clone(),
                    srtp: srtp.clone(),
                    metric: metric.to_owned(),
                    unit: unit.to_owned(),
                    confgate: a,
                    peer: b,
                    ratio: ratio(a, b),
                    lower_is_better: lower,
                    confgate_at_least: a_bound && a.is_some(),
                    peer_at_least: b_bound && b.is_some(),
                });
            };
        // CPU per packet at the highest load both servers ran (in a sweep, the small loads
        // measure per-connection timers more than packets).
        let common = c
            .iter()
            .map(|r| r.members)
            .filter(|n| j.iter().any(|r| r.members == *n))
            .max();
        fn at<'a>(rs: &[&'a Run], common: Option<u64>) -> Vec<&'a Run> {
            match common {
                Some(n) => rs.iter().copied().filter(|r| r.members == n).collect(),
                None => rs.to_vec(),
            }
        }
        let unit = match (common, scenario.as_str()) {
            (Some(n), "s1") => format!("µs, at {n} members"),
            _ => "µs".to_owned(),
        };
        push("server CPU per outgoing packet", &unit, true, &|rs| {
            mean(&at(rs, common), |r| r.cpu_us_per_packet)
        });
        if scenario == "s1" {
            push(
                "knee: most members, loss ≤ 0.5%, p99 ≤ 5 ms",
                "members",
                false,
                &knee,
            );
        }
        push("memory per member", "KiB", true, &|rs| {
            mean(rs, |r| r.rss_per_member.map(|b| b / 1024.0))
        });
        push("join time p50", "ms", true, &|rs| {
            mean(rs, |r| Some(r.join_p50_ms))
        });
        push("join time p99", "ms", true, &|rs| {
            mean(rs, |r| Some(r.join_p99_ms))
        });
    }
    out
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "–".to_owned(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn markdown(rows: &[Row], peer: &str) -> String {
    let mut s = format!(
        "| scenario | SRTP | metric | confgate | {peer} | confgate/{peer} |\n|---|---|---|---:|---:|---:|\n",
    );
    let bound = |at_least: bool| if at_least { "≥ " } else { "" };
    for r in rows {
        // A lower bound on one side bounds the ratio; on both, the ratio says nothing.
        let ratio = match (r.ratio, r.confgate_at_least, r.peer_at_least) {
            (None, ..) | (Some(_), true, true) => "–".to_owned(),
            (Some(x), true, false) => format!("≥ {x:.2}×"),
            (Some(x), false, true) => format!("≤ {x:.2}×"),
            (Some(x), false, false) => format!("{x:.2}×"),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} ({}) | {}{} | {}{} | {} |",
            r.scenario.replacen('s', "S", 1),
            r.srtp,
            r.metric,
            r.unit,
            bound(r.confgate_at_least),
            fmt(r.confgate),
            bound(r.peer_at_least),
            fmt(r.peer),
            ratio
        );
    }
    s
}

/// AES-GCM or AES-CM, for chart labels.
fn short_srtp(profile: &str) -> &str {
    if profile.contains("GCM") {
        "AES-GCM"
    } else if profile.contains("CM") {
        "AES-CM"
    } else {
        profile
    }
}

/// confgate's colour and the peer's in every chart.
const CONFGATE_COLOR: RGBColor = RGBColor(0x2a, 0x7a, 0xb9);
const PEER_COLOR: RGBColor = RGBColor(0xd9, 0x82, 0x2b);

/// A horizontal bar chart (SVG, drawn with plotters) of confgate and the peer per row of one
/// metric: two bars per row, each with its value, "no result" where a server has none.
fn bar_chart(
    title: &str,
    unit: &str,
    peer: &str,
    bars: &[(String, Option<f64>, Option<f64>)],
) -> String {
    let height = 110 + 46 * bars.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, height)).into_drawing_area();
        if let Err(e) = draw_bars(&root, title, unit, peer, bars).and_then(|()| root.present()) {
            // Drawing into a String fails only on a plotters bug; the table still stands.
            eprintln!("chart {title}: {e}");
        }
    }
    svg
}

type DrawResult =
    Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw_bars(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    unit: &str,
    peer: &str,
    bars: &[(String, Option<f64>, Option<f64>)],
) -> DrawResult {
    root.fill(&WHITE)?;
    let max = bars
        .iter()
        .flat_map(|(_, a, b)| [*a, *b])
        .flatten()
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let rows = bars.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{title} ({unit})"), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(230)
        .build_cartesian_2d(0.0..max * 1.2, 0.0..rows)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(6)
        .label_style(("sans-serif", 12))
        .draw()?;
    let value_style = ("sans-serif", 12).into_font();
    for (i, (label, a, b)) in bars.iter().enumerate() {
        // Row i from the top: the band [rows - i - 1, rows - i].
        let top = rows - i as f64;
        for (k, (value, color)) in [(a, CONFGATE_COLOR), (b, PEER_COLOR)]
            .into_iter()
            .enumerate()
        {
            let y1 = top - 0.1 - 0.4 * k as f64;
            let y0 = y1 - 0.36;
            match value {
                Some(v) => {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(0.0, y0), (*v, y1)],
                        color.filled(),
                    )))?;
                    chart.draw_series(std::iter::once(Text::new(
                        fmt(Some(*v)),
                        (*v + max * 0.01, y1 - 0.04),
                        value_style.clone(),
                    )))?;
                }
                None => {
                    chart.draw_series(std::iter::once(Text::new(
                        "no result",
                        (max * 0.01, y1 - 0.04),
                        value_style.clone().color(&RGBColor(0x88, 0x88, 0x88)),
                    )))?;
                }
            }
        }
        let (_, y) = chart.backend_coord(&(0.0, top - 0.62));
        root.draw(&Text::new(label.clone(), (14, y), ("sans-serif", 13)))?;
    }
    // The legend, top right.
    for (k, (name, color)) in [("confgate", CONFGATE_COLOR), (peer, PEER_COLOR)]
        .into_iter()
        .enumerate()
    {
        let x = 600 + 100 * k as i32;
        root.draw(&Rectangle::new([(x, 14), (x + 12, 26)], color.filled()))?;
        root.draw(&Text::new(
            name.to_owned(),
            (x + 16, 13),
            ("sans-serif", 13),
        ))?;
    }
    Ok(())
}

fn chart_name(metric: &str) -> &'static str {
    if metric.contains("CPU") {
        "cpu"
    } else if metric.starts_with("knee") {
        "knee"
    } else if metric.starts_with("memory") {
        "memory"
    } else if metric.ends_with("p50") {
        "join-p50"
    } else if metric.ends_with("p99") {
        "join-p99"
    } else {
        "chart"
    }
}

fn main() -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut peer = "janus".to_owned();
    let mut inputs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--peer" => peer = args.next().context("--peer needs a label")?,
            "-h" | "--help" => {
                println!(
                    "usage: confgate-bench-report --out PREFIX [--peer LABEL] RUN.json...\n\nWrites PREFIX.json, PREFIX.md and PREFIX-<metric>.svg, and prints the table.\nconfgate is compared with the runs labelled LABEL (default: janus)."
                );
                return Ok(());
            }
            _ => inputs.push(PathBuf::from(a)),
        }
    }
    let out = out.context("--out PREFIX is required")?;
    let mut runs = Vec::new();
    let mut raw = Vec::new();
    for path in &inputs {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        match Run::from_json(&v) {
            Some(run) => runs.push(run),
            None => eprintln!(
                "{}: not a confgate-loadgen result; left out",
                path.display()
            ),
        }
        raw.push(v);
    }
    anyhow::ensure!(!runs.is_empty(), "no results to report");
    let rows = rows(&runs, &peer);
    let title = if peer == "janus" { "Janus" } else { &peer };
    let table = markdown(&rows, title);
    print!("{table}");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::json!({"rows": rows, "runs": raw});
    std::fs::write(
        out.with_extension("json"),
        serde_json::to_vec_pretty(&json)?,
    )?;
    std::fs::write(out.with_extension("md"), &table)?;
    let stem = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("bench")
        .to_owned();
    let mut metrics: Vec<(&str, &str)> = Vec::new();
    for r in &rows {
        if !metrics.iter().any(|(m, _)| *m == r.metric) {
            // The chart's unit, without a note such as "at N members".
            metrics.push((&r.metric, r.unit.split(',').next().unwrap_or(&r.unit)));
        }
    }
    for (metric, unit) in &metrics {
        let bars: Vec<(String, Option<f64>, Option<f64>)> = rows
            .iter()
            .filter(|r| r.metric == *metric)
            .map(|r| {
                (
                    format!(
                        "{}, {}",
                        r.scenario.replacen('s', "S", 1),
                        short_srtp(&r.srtp)
                    ),
                    r.confgate,
                    r.peer,
                )
            })
            .collect();
        let path = out.with_file_name(format!("{stem}-{}.svg", chart_name(metric)));
        std::fs::write(&path, bar_chart(metric, unit, title, &bars))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, members: u64, loss: f64, p99: u64, cpu: f64) -> Run {
        Run {
            label: label.into(),
            scenario: "s1".into(),
            srtp: "AEAD_AES_128_GCM".into(),
            members,
            loss,
            p99_us: Some(p99),
            cpu_us_per_packet: Some(cpu),
            rss_per_member: Some(2048.0),
            join_p50_ms: 100.0,
            join_p99_ms: 200.0,
            receiving: members - 1,
        }
    }

    #[test]
    fn the_knee_is_the_largest_healthy_run_and_ratios_compare_the_servers() {
        let runs = vec![
            run("confgate", 9, 0.0, 900, 4.0),
            run("confgate", 17, 0.001, 4_000, 4.2),
            run("confgate", 33, 0.02, 9_000, 6.0),
            run("janus", 9, 0.0, 1_000, 8.0),
            run("janus", 17, 0.01, 7_000, 12.0),
        ];
        let rows = rows(&runs, "janus");
        let knee = rows
            .iter()
            .find(|r| r.metric.starts_with("knee"))
            .expect("knee row");
        assert_eq!((knee.confgate, knee.peer), (Some(17.0), Some(9.0)));
        assert!(
            !knee.confgate_at_least && !knee.peer_at_least,
            "both found their knee"
        );
        let cpu = rows
            .iter()
            .find(|r| r.metric.contains("CPU"))
            .expect("cpu row");
        // At the highest load both ran: 17 members, 4.2 against 12.0.
        assert_eq!(cpu.unit, "µs, at 17 members");
        assert!((cpu.ratio.expect("ratio") - 4.2 / 12.0).abs() < 1e-9);
        let md = markdown(&rows, "Janus");
        assert!(md.contains("| S1 | AEAD_AES_128_GCM | knee"), "{md}");
        assert!(md.starts_with("| scenario | SRTP | metric | confgate | Janus | confgate/Janus |"));
        let svg = bar_chart("t", "µs", "Janus", &[("S1".into(), Some(1.0), None)]);
        assert!(svg.starts_with("<svg") && svg.contains("no result") && svg.contains("\nJanus\n"));
        // Another peer: an earlier build of confgate.
        let before: Vec<Run> = runs
            .iter()
            .map(|r| Run {
                label: if r.label == "janus" {
                    "before".into()
                } else {
                    r.label.clone()
                },
                ..r.clone()
            })
            .collect();
        let rows_before = super::rows(&before, "before");
        assert_eq!(
            rows_before
                .iter()
                .map(|r| (r.confgate, r.peer))
                .collect::<Vec<_>>(),
            rows.iter()
                .map(|r| (r.confgate, r.peer))
                .collect::<Vec<_>>()
        );
        assert!(
            markdown(&rows_before, "before").contains("| confgate | before | confgate/before |")
        );
        let names: Vec<&str> = rows.iter().map(|r| chart_name(&r.metric)).collect();
        assert_eq!(names, ["cpu", "knee", "memory", "join-p50", "join-p99"]);
    }

    #[test]
    fn a_knee_at_the_top_of_a_sweep_is_a_lower_bound_and_bounds_the_ratio() {
        let runs = vec![
            run("confgate", 17, 0.0, 900, 4.0),
            run("confgate", 33, 0.0, 1_900, 4.0),
            run("janus", 17, 0.0, 3_000, 8.0),
            run("janus", 33, 0.0, 8_000, 9.0),
        ];
        let rows = rows(&runs, "janus");
        let knee = rows
            .iter()
            .find(|r| r.metric.starts_with("knee"))
            .expect("knee row");
        assert_eq!((knee.confgate, knee.peer), (Some(33.0), Some(17.0)));
        assert!(knee.confgate_at_least && !knee.peer_at_least);
        let md = markdown(&rows, "Janus");
        assert!(md.contains("(members) | ≥ 33.0 | 17.0 | ≥ 1.94× |"), "{md}");
        assert!(
            rows.iter()
                .filter(|r| !r.metric.starts_with("knee"))
                .all(|r| !r.confgate_at_least && !r.peer_at_least),
            "only the knee can be a bound"
        );
        // Both at the top of their sweeps: the ratio says nothing.
        let both = vec![
            run("confgate", 33, 0.0, 900, 4.0),
            run("janus", 33, 0.0, 900, 4.0),
        ];
        let md = markdown(&super::rows(&both, "janus"), "Janus");
        assert!(md.contains("| ≥ 33.0 | ≥ 33.0 | – |"), "{md}");
    }

    #[test]
    fn s3_has_rows_per_member_count_between_s2_and_s4() {
        let result = |label: &str, scenario: &str, members: u64, meeting: Option<u64>| {
            serde_json::json!({
                "label": label, "scenario": scenario, "srtp": "AEAD_AES_128_GCM",
                "members": members, "meeting_size": meeting,
                "summary": {"loss": 0.0, "latency_p99_us": 900, "server_cpu_us_per_packet": 5.0,
                    "server_rss_per_member_bytes": 4096.0, "join_p50_ms": 80.0,
                    "join_p99_ms": 90.0, "members_receiving": members},
            })
        };
        let runs: Vec<Run> = [
            result("confgate", "s4", 40, None),
            result("confgate", "s3", 32, None),
            result("janus", "s3", 32, None),
            result("confgate", "s3", 8, None),
            result("janus", "s3", 8, None),
            result("confgate", "s2", 16, Some(8)),
        ]
        .iter()
        .map(|v| Run::from_json(v).expect("a result"))
        .collect();
        let rows = rows(&runs, "janus");
        let scenarios: Vec<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
        let mut order = scenarios.clone();
        order.dedup();
        assert_eq!(
            order,
            [
                "s2 meetings of 8",
                "s3 with 8 members",
                "s3 with 32 members",
                "s4"
            ]
        );
        let s3: Vec<&Row> = rows
            .iter()
            .filter(|r| r.scenario == "s3 with 32 members")
            .collect();
        let metrics: Vec<&str> = s3.iter().map(|r| r.metric.as_str()).collect();
        assert_eq!(
            metrics,
            [
                "server CPU per outgoing packet",
                "memory per member",
                "join time p50",
                "join time p99"
            ]
        );
        assert_eq!(s3[0].unit, "µs");
        assert_eq!(
            (s3[1].confgate, s3[1].peer, s3[1].ratio),
            (Some(4.0), Some(4.0), Some(1.0))
        );
        assert!(markdown(&rows, "Janus").contains("| S3 with 32 members | AEAD_AES_128_GCM | memory per member (KiB) | 4.00 | 4.00 | 1.00× |"));
    }
}
