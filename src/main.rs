//! The `confgate` command: `serve` (the default) and `conference …`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use confgate::authority::{NewAccount, NewConference};
use confgate::config::{Config, Overrides};
use confgate::store::{Role, now_ms};
use confgate::{AppState, Server, rpc, telemetry};
use confgate_signalling::join_link::Password;
use confgate_signalling::methods::ConferenceInfo;

/// Join an enterprise video conference from a browser link.
///
/// Without a command, runs `serve`: HTTPS and WSS on 0.0.0.0:8443 with a
/// self-signed certificate, SQLite under ./data, and a demo conference whose
/// join link is printed at start.
///
/// Configuration is layered: defaults, then the TOML file (--config), then
/// CONFGATE_… environment variables (sections joined by a double underscore,
/// such as CONFGATE_LINKS__FORMAT=opaque), then flags. See
/// docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "confgate", version, max_term_width = 100)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct Global {
    /// TOML configuration file; unknown keys are rejected.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and the self-signed certificate
    /// [default: ./data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or mysql://USER:PASSWORD@HOST:PORT/DB [default: SQLite in the data directory].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log filter such as info, debug or confgate=trace; RUST_LOG wins when set.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,
    /// Address and port for HTTPS and WSS [default: 0.0.0.0:8443].
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Serve plain HTTP, without TLS (behind a TLS proxy, or for tests).
    #[arg(long, global = true)]
    plain_http: bool,
    /// Base URL of join links, such as https://meet.example.com
    /// [default: from --listen and this machine's address].
    #[arg(long, global = true, value_name = "URL")]
    public_url: Option<String>,
    /// RabbitMQ for the event bus, such as
    /// amqp://guest:guest@127.0.0.1:5672/%2f [default: in-process events].
    #[arg(long, global = true, value_name = "URL")]
    amqp_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the join page, the JSON-RPC API and the WebSocket (the default).
    Serve(ServeArgs),
    /// Create, list and end conferences, against the same database as `serve`
    /// (while it runs, too).
    #[command(subcommand)]
    Conference(ConferenceCommand),
}

#[derive(Debug, Args, Default)]
struct ServeArgs {
    /// Do not create a demo conference when there is none.
    #[arg(long)]
    no_demo: bool,
}

#[derive(Debug, Subcommand)]
enum ConferenceCommand {
    /// Create a conference and print its id, password and join links.
    Create(CreateArgs),
    /// List conferences, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// End a conference now: its links stop working and its temporary
    /// accounts are removed.
    End {
        /// The conference id.
        id: String,
    },
    /// Make another opaque join link for a conference.
    Link {
        /// The conference id.
        id: String,
    },
    /// Bind a conference to a SIP/MCU conference: each web member calls into
    /// it. Options left out take the [sip] defaults of the configuration.
    Bind(BindArgs),
    /// Remove a conference's MCU binding.
    Unbind {
        /// The conference id.
        id: String,
    },
    /// Revoke an opaque join link.
    RevokeLink {
        /// The opaque code (the last part of the link).
        code: String,
    },
}

#[derive(Debug, Args)]
struct BindArgs {
    /// The conference id.
    id: String,
    /// The MCU conference, such as sip:8001@mcu.example.com.
    #[arg(long, value_name = "SIP_URI")]
    mcu: String,
    /// udp or tcp [default: from [sip], udp].
    #[arg(long)]
    transport: Option<String>,
    /// Send every request through this proxy, such as sip:proxy.example.com.
    #[arg(long, value_name = "SIP_URI")]
    proxy: Option<String>,
    /// Digest username for this MCU [default: from [sip]].
    #[arg(long)]
    username: Option<String>,
    /// Digest password for this MCU.
    #[arg(long)]
    password: Option<String>,
    /// Codecs in order of preference, comma-separated: opus, pcmu, pcma, vp8, h264.
    #[arg(long, value_delimiter = ',')]
    codecs: Option<Vec<String>>,
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The conference's name, shown on the join page.
    #[arg(long)]
    name: String,
    /// The conference password, 4 to 16 digits [default: 6 random digits].
    #[arg(long, value_name = "DIGITS")]
    password: Option<String>,
    /// When it starts: RFC 3339 (2026-12-01T09:00:00+08:00), epoch
    /// milliseconds, or relative (+30m, +2h, +1d) [default: now].
    #[arg(long, value_name = "TIME")]
    starts_at: Option<String>,
    /// When it ends, in the same forms [default: when ended by hand].
    #[arg(long, value_name = "TIME")]
    ends_at: Option<String>,
    /// Make a chair account with this display name; its id and secret are
    /// printed, for auth.http.login.
    #[arg(long, value_name = "NAME")]
    chair: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.global.listen,
        plain_http: cli.global.plain_http,
        data_dir: cli.global.data_dir.clone(),
        database_url: cli.global.database_url.clone(),
        public_url: cli.global.public_url.clone(),
        log: cli.global.log_level.clone(),
        amqp_url: cli.global.amqp_url.clone(),
    };
    let config = Config::load(cli.global.config.as_deref(), std::env::vars(), &overrides)?;
    telemetry::init_logging(&config.log);
    let runtime = tokio::runtime::Runtime::new().context("start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            None => serve(config, &ServeArgs::default()).await,
            Some(Command::Serve(args)) => serve(config, &args).await,
            Some(Command::Conference(cmd)) => conference(config, cmd).await,
        }
    })
}

async fn serve(config: Config, args: &ServeArgs) -> anyhow::Result<()> {
    let database = redact(&config.database_url());
    let server = Server::start(config)
        .await
        .context("cannot start confgate")?;
    let state = server.state().clone();
    let base = state.config.public_base_url();
    println!("confgate {} serving {base}", env!("CARGO_PKG_VERSION"));
    if state.config.listen.ip().is_unspecified() && !base.contains("127.0.0.1") {
        let scheme = if state.config.plain_http {
            "http"
        } else {
            "https"
        };
        println!(
            "  also at {scheme}://127.0.0.1:{}",
            server.local_addr().port()
        );
    }
    println!("  database: {database}");
    if !state.config.plain_http && state.config.tls.cert.is_none() {
        println!(
            "  TLS: self-signed certificate in {}/tls (browsers will warn once)",
            state.config.data_dir.display()
        );
    }
    if !args.no_demo && state.store.count_conferences().await? == 0 {
        let info = create(
            &state,
            CreateArgs {
                name: "Demo conference 演示会议".into(),
                password: None,
                starts_at: None,
                ends_at: None,
                chair: None,
                json: false,
            },
        )
        .await?;
        println!(
            "  demo conference {} (password {}): open",
            info.conf_id, info.password
        );
        for link in &info.links {
            println!("    {link}");
        }
    }
    println!("  create more: confgate conference create --name NAME");
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn conference(config: Config, cmd: ConferenceCommand) -> anyhow::Result<()> {
    let state = confgate::open_state(config)
        .await
        .context("cannot open the database")?;
    match cmd {
        ConferenceCommand::Create(args) => {
            let json = args.json;
            let chair = args.chair.clone();
            let info = create(&state, args).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print_created(&info, chair.is_some());
            }
        }
        ConferenceCommand::List { limit, json } => {
            let confs = state
                .authority
                .list_conferences(None, i64::from(limit.clamp(1, 10_000)))
                .await?;
            let mut infos = Vec::with_capacity(confs.len());
            for conf in &confs {
                infos.push(rpc::conferences::info(&state, conf).await?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&infos)?);
            } else if infos.is_empty() {
                println!("no conferences");
            } else {
                println!(
                    "{:<10} {:<8} {:<11} {:<30} link",
                    "id", "state", "password", "name"
                );
                for i in &infos {
                    let state = match i.state.code() {
                        0 => "live",
                        30 => "later",
                        _ => "ended",
                    };
                    println!(
                        "{:<10} {:<8} {:<11} {:<30} {}",
                        i.conf_id,
                        state,
                        i.password,
                        i.conf_name,
                        i.links.first().map_or("", String::as_str)
                    );
                }
            }
        }
        ConferenceCommand::End { id } => {
            if state.authority.conference(id.clone()).await?.is_none() {
                bail!("no conference {id}");
            }
            if state.authority.end_conference(id.clone(), now_ms()).await? {
                let removed = state.authority.sweep(now_ms()).await?;
                println!("conference {id} ended; {removed} temporary accounts removed");
            } else {
                println!("conference {id} had already ended");
            }
        }
        ConferenceCommand::Link { id } => {
            let conf = state
                .authority
                .conference(id.clone())
                .await?
                .with_context(|| format!("no conference {id}"))?;
            let link = confgate::links::create_opaque(&state, &conf, now_ms()).await?;
            println!(
                "{}{}{}",
                state.config.public_base_url(),
                confgate::links::JOIN_PATH,
                link.code
            );
        }
        ConferenceCommand::Bind(args) => {
            let conf = state
                .authority
                .conference(args.id.clone())
                .await?
                .with_context(|| format!("no conference {}", args.id))?;
            let params = confgate_signalling::methods::BindMcuParams {
                conf_id: conf.conf_id.clone(),
                uri: args.mcu,
                transport: args.transport,
                outbound_proxy: args.proxy,
                username: args.username,
                password: args.password,
                codecs: args.codecs,
            };
            let binding = confgate::mcu::binding(params, &state.config.sip, now_ms())?;
            state.store.set_mcu_binding(&binding).await?;
            let view = confgate::mcu::view(&binding, &state.config.sip);
            println!(
                "conference {} bound to {} over {} (codecs {})",
                conf.conf_id,
                view.uri,
                view.transport,
                view.codecs.join(",")
            );
        }
        ConferenceCommand::Unbind { id } => {
            if !state.store.delete_mcu_binding(&id).await? {
                bail!("conference {id} is not bound to an MCU");
            }
            println!("conference {id} unbound");
        }
        ConferenceCommand::RevokeLink { code } => {
            let code = code.rsplit('/').next().unwrap_or(&code).to_string();
            if state.store.revoke_join_link(&code, now_ms()).await? {
                println!("link revoked");
            } else {
                bail!("no usable opaque link {code}");
            }
        }
    }
    state.store.close().await;
    Ok(())
}

async fn create(state: &Arc<AppState>, args: CreateArgs) -> anyhow::Result<CreatedInfo> {
    let now = now_ms();
    let password = args
        .password
        .as_deref()
        .map(|p| Password::parse(p).map_err(|e| anyhow::anyhow!("--password: {e}")))
        .transpose()?;
    let starts_at = args
        .starts_at
        .as_deref()
        .map(|t| parse_time(t, now).context("--starts-at"))
        .transpose()?;
    let ends_at = args
        .ends_at
        .as_deref()
        .map(|t| parse_time(t, now).context("--ends-at"))
        .transpose()?;
    let chair = match &args.chair {
        Some(name) => Some(
            state
                .authority
                .create_account(
                    NewAccount {
                        name: name.clone(),
                        user_id: None,
                        password: None,
                        mobile: None,
                        email: None,
                        role: Role::Chair,
                        conf_id: None,
                    },
                    now,
                )
                .await?,
        ),
        None => None,
    };
    let conf = rpc::conferences::create_conference(
        state,
        NewConference {
            name: args.name,
            password,
            starts_at,
            ends_at,
            chair_user_id: chair.as_ref().map(|c| c.user.user_id.clone()),
        },
    )
    .await?;
    let info = rpc::conferences::info(state, &conf).await?;
    // The chair's own link carries an access token after `#` (never sent to
    // the server by the browser): the page joins as the chair.
    let chair_link = match (&chair, info.links.first()) {
        (Some(c), Some(link)) => {
            let login = rpc::auth::issue_tokens(state, &c.user, "client_credentials", now).await?;
            Some(format!("{link}#chair={}", login.access_token))
        }
        _ => None,
    };
    Ok(CreatedInfo {
        info,
        chair_client_secret: chair.and_then(|c| c.client_secret),
        chair_link,
    })
}

#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedInfo {
    #[serde(flatten)]
    info: ConferenceInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    chair_client_secret: Option<String>,
    /// The join link that makes its opener the chair, valid as long as an
    /// access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    chair_link: Option<String>,
}

impl std::ops::Deref for CreatedInfo {
    type Target = ConferenceInfo;
    fn deref(&self) -> &ConferenceInfo {
        &self.info
    }
}

fn print_created(info: &CreatedInfo, with_chair: bool) {
    println!("conference {} \"{}\"", info.conf_id, info.conf_name);
    println!("  password: {}", info.password);
    for link in &info.links {
        println!("  link:     {link}");
    }
    if let (true, Some(chair), Some(secret)) =
        (with_chair, &info.chair_user_id, &info.chair_client_secret)
    {
        println!(
            "  chair:    {chair} (secret {secret}; auth.http.login with grantType client_credentials)"
        );
    }
    if let Some(link) = &info.chair_link {
        println!("  chair's link (joins as the chair; valid while its token is): {link}");
    }
}

/// RFC 3339, epoch milliseconds, `now`, or `+N[smhd]` from now.
fn parse_time(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    if text == "now" {
        return Ok(now_ms);
    }
    if let Some(rel) = text.strip_prefix('+') {
        let (number, unit) =
            rel.split_at(rel.find(|c: char| !c.is_ascii_digit()).unwrap_or(rel.len()));
        let n: i64 = number
            .parse()
            .with_context(|| format!("{text:?}: expected +N followed by s, m, h or d"))?;
        let unit_ms = match unit {
            "s" => 1_000,
            "m" | "" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => bail!("{text:?}: unknown unit {other:?}; use s, m, h or d"),
        };
        return Ok(now_ms.saturating_add(n.saturating_mul(unit_ms)));
    }
    if text.len() >= 10 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .with_context(|| format!("{text:?}: epoch milliseconds out of range"));
    }
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!("{text:?}: expected RFC 3339 (2026-12-01T09:00:00+08:00), epoch ms, or +30m")
        })?;
    Ok(i64::try_from(t.unix_timestamp_nanos() / 1_000_000)?)
}

/// The URL with any password hidden, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("now", 5).expect("now"), 5);
        assert_eq!(parse_time("+2h", 0).expect("rel"), 7_200_000);
        assert_eq!(parse_time("+30s", 1).expect("rel"), 30_001);
        assert_eq!(
            parse_time("1767225600000", 0).expect("ms"),
            1_767_225_600_000
        );
        assert_eq!(
            parse_time("2026-01-01T00:00:00Z", 0).expect("rfc3339"),
            1_767_225_600_000
        );
        assert!(parse_time("tomorrow", 0).is_err());
        assert!(parse_time("+3y", 0).is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(redact("mysql://root:pw@h/db"), "mysql://root:***@h/db");
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
        assert_eq!(redact("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
