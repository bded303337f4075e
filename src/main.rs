//! The `orderflow` binary: serve the app (the default), or manage users and API tokens.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use orderflow::config::{parse_amount, per_window, ApprovalPolicy, Config, Limits};
use orderflow::db::Db;
use orderflow::model::Role;
use orderflow::{auth, server};
use std::io::Read;

/// mimalloc: the engine and the runtime build and drop many small JSON nodes, and it is markedly
/// faster at that than the system allocator (see the `throughput` benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Human-in-the-loop order approval on a durable ASL engine"
)]
struct Cli {
    /// SQLite database URL; the file is created on first run.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://orderflow.sqlite3",
        global = true
    )]
    database_url: String,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web app and the APIs (the default).
    Serve,
    /// Manage approver and admin accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage access keys for the AWS Step Functions API at /sfn.
    AccessKey {
        #[command(subcommand)]
        command: AccessKeyCommand,
    },
}

#[derive(Subcommand)]
enum AccessKeyCommand {
    /// Create an access key for a user; prints `AWS_ACCESS_KEY_ID=…` and
    /// `AWS_SECRET_ACCESS_KEY=…` lines a shell can `eval`.
    Create { name: String },
    /// List access keys: id, user, created, last used (never the secret).
    List,
    /// Revoke an access key at once.
    Revoke { id: String },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on (overrides LEPTOS_SITE_ADDR).
    #[arg(long, global = true)]
    addr: Option<std::net::SocketAddr>,
    /// Orders above this amount need a person's approval.
    #[arg(
        long,
        env = "ORDERFLOW_APPROVAL_THRESHOLD",
        default_value = "100.00",
        global = true
    )]
    approval_threshold: String,
    /// Orders above this amount need a second approval, by a different approver.
    #[arg(
        long,
        env = "ORDERFLOW_SECOND_APPROVAL_THRESHOLD",
        default_value = "5000.00",
        global = true
    )]
    second_approval_threshold: String,
    /// Seconds an approval may wait before it is escalated to the admins.
    #[arg(
        long,
        env = "ORDERFLOW_APPROVAL_TIMEOUT_SECONDS",
        default_value_t = 48 * 3600,
        value_parser = clap::value_parser!(u64).range(1..=31_536_000),
        global = true
    )]
    approval_timeout_seconds: u64,
    /// Create demo accounts (approver "demo-approver", admin "demo-admin") with fresh random
    /// passwords, printed at start.
    #[arg(long, env = "ORDERFLOW_DEMO", global = true)]
    demo: bool,
    /// Mark the session cookie Secure (serve behind HTTPS).
    #[arg(long, env = "ORDERFLOW_SECURE_COOKIES", global = true)]
    secure_cookies: bool,
    /// Connections served at once; further clients wait until one closes.
    #[arg(long, env = "ORDERFLOW_MAX_CONNECTIONS", default_value_t = Limits::DEFAULT.max_connections as u32,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000), global = true)]
    max_connections: u32,
    /// Seconds a client has to send a request's headers (also how long an idle keep-alive
    /// connection stays open).
    #[arg(long, env = "ORDERFLOW_HEADER_READ_TIMEOUT_SECONDS", default_value_t = Limits::DEFAULT.header_read_timeout.as_secs(),
        value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    header_read_timeout_seconds: u64,
    /// `/live` streams one session may have open at once.
    #[arg(long, env = "ORDERFLOW_LIVE_STREAMS_PER_SESSION", default_value_t = Limits::DEFAULT.live_streams_per_session as u32,
        value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    live_streams_per_session: u32,
    /// Failed sign-ins per username in 15 minutes before it is refused.
    #[arg(long, env = "ORDERFLOW_SIGN_IN_FAILURES_PER_ACCOUNT",
        default_value_t = Limits::DEFAULT.sign_in_failures_per_account.max,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    sign_in_failures_per_account: u32,
    /// Failed sign-ins per client address in 15 minutes before it is refused.
    #[arg(long, env = "ORDERFLOW_SIGN_IN_FAILURES_PER_CLIENT",
        default_value_t = Limits::DEFAULT.sign_in_failures_per_client.max,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    sign_in_failures_per_client: u32,
    /// Storefront orders per client address in 15 minutes.
    #[arg(long, env = "ORDERFLOW_STOREFRONT_ORDERS_PER_CLIENT",
        default_value_t = Limits::DEFAULT.storefront_orders_per_client.max,
        value_parser = clap::value_parser!(u32).range(1..), global = true)]
    storefront_orders_per_client: u32,
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections as usize,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_seconds),
            live_streams_per_session: self.live_streams_per_session as usize,
            sign_in_failures_per_account: per_window(self.sign_in_failures_per_account),
            sign_in_failures_per_client: per_window(self.sign_in_failures_per_client),
            storefront_orders_per_client: per_window(self.storefront_orders_per_client),
        }
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set a user's password, read from standard input.
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Set a user's e-mail (they never decide orders placed with it) and approval limit.
    Profile {
        name: String,
        /// Their e-mail address; empty to clear.
        #[arg(long, default_value = "")]
        email: String,
        /// The largest total they may approve, like 500.00; empty for no limit.
        #[arg(long, default_value = "")]
        approval_limit: String,
    },
    /// Change a user's role; their sessions end.
    Role {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Disable a user: their sessions end, their API tokens and access keys are refused.
    Disable { name: String },
    /// Enable a disabled user again (they sign in afresh; their tokens and keys work again).
    Enable { name: String },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (use as `Authorization: Bearer <token>`).
    Create {
        name: String,
        /// Refuse the token after this many days (default: it never expires).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(orderflow::model::MAX_TOKEN_DAYS)))]
        expires_in_days: Option<u32>,
    },
    /// List API tokens: id, user, created, last used, expiry (never the token itself).
    List,
    /// Revoke an API token at once.
    Revoke { id: i64 },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("'{s}' is not a role: use approver or admin"))
}

fn read_password() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the password from standard input")?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let traces = init_tracing()?;
    let cli = Cli::parse();
    let result = run(cli).await;
    if let Some(provider) = traces {
        // Sends the spans still queued; a collector that is gone costs at most its timeout.
        if let Err(e) = provider.shutdown() {
            eprintln!("exporting the last traces failed: {e}");
        }
    }
    result
}

/// Logs to standard error (filtered by `RUST_LOG`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, exports spans over OTLP/HTTP with protobuf:
/// one per HTTP request and one per execution step, under `OTEL_SERVICE_NAME` ("orderflow" by
/// default). Those spans are at debug level and only the exporter's own filter enables them,
/// so without an exporter they cost nothing and the logs look as before.
fn init_tracing() -> anyhow::Result<Option<opentelemetry_sdk::trace::SdkTracerProvider>> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()),
        );
    let configured = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    let provider = configured.then(tracer_provider).transpose()?;
    let export = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        use tracing::Level;
        let spans = tracing_subscriber::filter::Targets::new()
            .with_target("tower_http::trace", Level::DEBUG)
            .with_target("orderflow::runtime::executor", Level::DEBUG)
            .with_target("orderflow", Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("orderflow"))
            .with_filter(spans)
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(export)
        .init();
    Ok(provider)
}

/// The OTLP exporter reads its endpoint, headers and timeout from the standard `OTEL_*`
/// variables, the batch processor its delays and sizes (`OTEL_BSP_*`).
fn tracer_provider() -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .context("setting up the OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT)")?;
    let service = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "orderflow".into());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.database_url, cli.serve).await,
        Command::User { command } => {
            let db = Db::open(&cli.database_url).await?;
            user_command(&db, command).await
        }
        Command::Token { command } => {
            let db = Db::open(&cli.database_url).await?;
            token_command(&db, command).await
        }
        Command::AccessKey { command } => {
            let db = Db::open(&cli.database_url).await?;
            access_key_command(&db, command).await
        }
    }
}

/// The audit log names changes made with these commands "(command line)".
const CLI: auth::Actor<'static> = auth::Actor::CommandLine;

async fn user_command(db: &Db, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, role, .. } => {
            let password = read_password()?;
            let none = auth::Profile::new(None, None)?;
            let user = auth::add_user(db, CLI, &name, role, &password, &none).await?;
            println!("added {} ({})", user.username, user.role.as_str());
        }
        UserCommand::Passwd { name, .. } => {
            let password = read_password()?;
            auth::reset_password(db, CLI, &name, &password).await?;
            println!("password changed for {name}; their sessions are ended");
        }
        UserCommand::Profile {
            name,
            email,
            approval_limit,
        } => {
            let limit = match approval_limit.trim() {
                "" => None,
                text => {
                    Some(parse_amount(text).map_err(|e| anyhow::anyhow!("--approval-limit: {e}"))?)
                }
            };
            let profile = auth::Profile::new(Some(&email), limit)?;
            auth::update_user(db, CLI, &name, None, &profile).await?;
            println!("profile changed for {name}");
        }
        UserCommand::Role { name, role } => {
            auth::set_role(db, CLI, &name, role).await?;
            println!("{name} is now {}", role.as_str());
        }
        UserCommand::Disable { name } => {
            auth::set_disabled(db, CLI, &name, true).await?;
            println!("{name} disabled");
        }
        UserCommand::Enable { name } => {
            auth::set_disabled(db, CLI, &name, false).await?;
            println!("{name} enabled");
        }
    }
    Ok(())
}

async fn token_command(db: &Db, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            name,
            expires_in_days,
        } => {
            let token = auth::issue_api_token(db, CLI, &name, expires_in_days).await?;
            if let Some(at) = &token.expires_at {
                eprintln!("token {} for {name} expires at {at}", token.id);
            }
            println!("{}", token.token);
        }
        TokenCommand::List => {
            println!("ID\tUSER\tCREATED\tLAST USED\tEXPIRES\tSTATUS");
            for t in auth::api_tokens(db).await? {
                let status = if t.owner_disabled {
                    "user disabled"
                } else if t.expired {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{status}",
                    t.id,
                    t.username,
                    t.created_at,
                    t.last_used_at.as_deref().unwrap_or("never"),
                    t.expires_at.as_deref().unwrap_or("never"),
                );
            }
        }
        TokenCommand::Revoke { id } => {
            auth::revoke_api_token(db, CLI, id).await?;
            println!("API token {id} revoked");
        }
    }
    Ok(())
}

async fn access_key_command(db: &Db, command: AccessKeyCommand) -> anyhow::Result<()> {
    match command {
        AccessKeyCommand::Create { name } => {
            let (id, secret) = auth::issue_access_key(db, CLI, &name).await?;
            println!("AWS_ACCESS_KEY_ID={id}");
            println!("AWS_SECRET_ACCESS_KEY={secret}");
        }
        AccessKeyCommand::List => {
            println!("ID\tUSER\tCREATED\tLAST USED");
            for k in auth::access_keys(db).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    k.id,
                    k.username,
                    k.created_at,
                    k.last_used_at.as_deref().unwrap_or("never"),
                );
            }
        }
        AccessKeyCommand::Revoke { id } => {
            auth::revoke_access_key(db, CLI, &id).await?;
            println!("access key {id} revoked");
        }
    }
    Ok(())
}

async fn serve(database_url: String, args: ServeArgs) -> anyhow::Result<()> {
    let threshold = parse_amount(&args.approval_threshold)
        .map_err(|e| anyhow::anyhow!("--approval-threshold: {e}"))?;
    let second_threshold = parse_amount(&args.second_approval_threshold)
        .map_err(|e| anyhow::anyhow!("--second-approval-threshold: {e}"))?;
    if second_threshold < threshold {
        anyhow::bail!("--second-approval-threshold must not be below --approval-threshold");
    }
    let config = Config {
        database_url,
        approval: ApprovalPolicy {
            threshold,
            second_threshold,
            timeout_seconds: args.approval_timeout_seconds,
        },
        secure_cookies: args.secure_cookies,
        limits: args.limits(),
    };
    // Run from the repository root, Cargo.toml's [package.metadata.leptos] applies (LEPTOS_*
    // variables still override it); elsewhere the variables alone, as cargo-leptos sets them.
    let manifest = std::path::Path::new("Cargo.toml")
        .exists()
        .then_some("Cargo.toml");
    let leptos = leptos::config::get_configuration(manifest)?.leptos_options;
    let addr = args.addr.unwrap_or(leptos.site_addr);
    let app = server::Server::build(config, leptos, addr).await?;
    if args.demo {
        demo_accounts(&app.state).await?;
    }
    tracing::info!("listening on http://{}", app.local_addr()?);
    app.run().await?;
    Ok(())
}

/// Creates or resets the demo accounts with new random passwords and prints them.
async fn demo_accounts(state: &orderflow::state::AppState) -> anyhow::Result<()> {
    use rand::distributions::{Alphanumeric, DistString};
    for (name, role) in [
        ("demo-approver", Role::Approver),
        ("demo-admin", Role::Admin),
    ] {
        let password = Alphanumeric.sample_string(&mut rand::rngs::OsRng, 20);
        let none = auth::Profile::new(None, None)?;
        match auth::add_user(state.db(), CLI, name, role, &password, &none).await {
            Err(auth::AuthError::UserExists(_)) => {
                auth::reset_password(state.db(), CLI, name, &password).await?;
            }
            other => {
                other?;
            }
        }
        println!(
            "demo account: {name} ({}) password: {password}",
            role.as_str()
        );
    }
    Ok(())
}
