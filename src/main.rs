//! The `orderflow` binary: serve the app (the default), or manage users and API tokens.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use orderflow::config::{parse_amount, ApprovalPolicy, Config};
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
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (use as `Authorization: Bearer <token>`).
    Create { name: String },
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.database_url, cli.serve).await,
        Command::User { command } => {
            let db = Db::open(&cli.database_url).await?;
            match command {
                UserCommand::Add { name, role, .. } => {
                    let password = read_password()?;
                    let user = auth::create_user(&db, &name, role, &password).await?;
                    let detail = format!("role {}", role.as_str());
                    cli_audit(&db, "add user", &name, Some(&detail)).await?;
                    println!("added {} ({})", user.username, user.role.as_str());
                }
                UserCommand::Passwd { name, .. } => {
                    let password = read_password()?;
                    auth::set_password(&db, &name, &password).await?;
                    cli_audit(&db, "reset password", &name, None).await?;
                    println!("password changed for {name}");
                }
                UserCommand::Profile {
                    name,
                    email,
                    approval_limit,
                } => {
                    let limit = match approval_limit.trim() {
                        "" => None,
                        text => Some(
                            parse_amount(text)
                                .map_err(|e| anyhow::anyhow!("--approval-limit: {e}"))?,
                        ),
                    };
                    auth::set_profile(&db, &name, Some(&email), limit).await?;
                    let detail = format!(
                        "e-mail {}, limit {}",
                        Some(email.trim())
                            .filter(|e| !e.is_empty())
                            .unwrap_or("none"),
                        limit.map_or_else(|| "none".to_string(), |l| l.to_string())
                    );
                    cli_audit(&db, "update user", &name, Some(&detail)).await?;
                    println!("profile changed for {name}");
                }
            }
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { name },
        } => {
            let db = Db::open(&cli.database_url).await?;
            let token = auth::create_api_token(&db, &name).await?;
            cli_audit(&db, "create API token", &name, None).await?;
            println!("{token}");
            Ok(())
        }
        Command::AccessKey {
            command: AccessKeyCommand::Create { name },
        } => {
            let db = Db::open(&cli.database_url).await?;
            let (id, secret) = auth::create_access_key(&db, &name).await?;
            cli_audit(&db, "create access key", &id, Some(&name)).await?;
            println!("AWS_ACCESS_KEY_ID={id}");
            println!("AWS_SECRET_ACCESS_KEY={secret}");
            Ok(())
        }
    }
}

/// Who the audit log names for changes made with these commands on the host. Usernames cannot
/// contain spaces or parentheses, so it is never mistaken for an account.
const CLI_ACTOR: &str = "(command line)";

async fn cli_audit(
    db: &Db,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> anyhow::Result<()> {
    Ok(orderflow::console::audit(db, CLI_ACTOR, action, target, detail).await?)
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
        let action = match auth::create_user(state.db(), name, role, &password).await {
            Err(auth::AuthError::UserExists(_)) => {
                auth::set_password(state.db(), name, &password).await?;
                "reset password"
            }
            other => {
                other?;
                "add user"
            }
        };
        cli_audit(state.db(), action, name, Some("--demo")).await?;
        println!(
            "demo account: {name} ({}) password: {password}",
            role.as_str()
        );
    }
    Ok(())
}
