//! The `rampart` command line.

use std::{collections::HashMap, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{
    application::{self, Application},
    auth::{keys::KeyRing, tokens::key_retention},
    clock::Clock,
    config::{Config, Environment, Loaded},
    domain::{password::Password, user::EmailAddress, user::Role},
    server, setup,
    state::AppState,
    store::users,
    telemetry,
};

/// Rampart: a secure-by-default HTTP API server.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (development mode on the embedded default when nothing is configured).
    Serve,
    /// Apply database migrations.
    Migrate,
    /// Validate the configuration and print it with every secret redacted.
    CheckConfig,
    /// Create (or promote) a verified admin account; the password is read from stdin.
    CreateAdmin {
        /// The admin's email address.
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required: passwords never go on the
        /// command line, where `ps` shows them).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Black-box posture check of any HTTP API: headers, CORS, cookies, error leaks,
    /// rate-limit presence and TLS; exit 1 on any failing check.
    Audit(crate::audit::AuditArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key and make it current; old keys keep verifying until the
    /// longest token they signed has expired, then are deleted.
    Rotate,
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    // The audit probes another server: this server's configuration plays no part in it.
    let command = match cli.command {
        Command::Audit(args) => return audit(args),
        command => command,
    };
    let vars = environment();
    let loaded = match Config::load(&vars) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("rampart: {e}");
            return ExitCode::FAILURE;
        }
    };
    match command {
        Command::CheckConfig => check_config(&loaded),
        Command::Serve => block_on(serve(loaded, vars.get("RAMPART_LOG").cloned())),
        Command::Migrate => block_on(migrate(loaded, vars.get("RAMPART_LOG").cloned())),
        Command::CreateAdmin { email, .. } => block_on(create_admin(loaded, email)),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => keys_rotate(&loaded.config),
        Command::Audit(args) => audit(args),
    }
}

/// `rampart audit`: the report on stdout; exit 0 only when it passes.
fn audit(args: crate::audit::AuditArgs) -> ExitCode {
    match crate::audit::run(args) {
        Ok((report, passes)) => {
            println!("{report}");
            if passes {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(stopped) => {
            eprintln!("rampart audit: {}", stopped.message);
            stopped.code
        }
    }
}

/// The process environment, after reading `.env` when not in production.
fn environment() -> HashMap<String, String> {
    if std::env::var("RAMPART_ENV").as_deref() != Ok("production") {
        // Development only: a `.env` file never overrides the real environment.
        let _ = dotenvy::dotenv();
    }
    std::env::vars().collect()
}

fn block_on(fut: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rampart: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "rampart stopped");
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(loaded: &Loaded) -> ExitCode {
    let config = &loaded.config;
    println!("{:<34} value", "setting");
    for (name, value) in config.redacted() {
        println!("{name:<34} {value}");
    }
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let findings = config.audit();
    match config.env {
        Environment::Production if !findings.is_empty() => {
            eprintln!("production refuses to start:");
            for f in &findings {
                eprintln!("  - {f}");
            }
            ExitCode::FAILURE
        }
        _ => {
            for f in &findings {
                eprintln!("warning (insecure outside development): {f}");
            }
            println!("configuration OK");
            ExitCode::SUCCESS
        }
    }
}

async fn migrate(loaded: Loaded, log_filter: Option<String>) -> anyhow::Result<()> {
    let mut config = loaded.config;
    let _log = telemetry::init(config.log_format, log_filter.as_deref());
    setup::prepare(&mut config)?;
    let db = application::open_database(&config).await?;
    db.close().await;
    tracing::info!(database = %config.database_url, "migrations applied");
    Ok(())
}

async fn serve(loaded: Loaded, log_filter: Option<String>) -> anyhow::Result<()> {
    let _log = telemetry::init(loaded.config.log_format, log_filter.as_deref());
    let app = Application::build(loaded, Clock::system()).await?;
    app.run(server::shutdown_signal()).await
}

fn keys_rotate(config: &Config) -> ExitCode {
    let now = Clock::system().now_utc();
    match KeyRing::rotate(
        &config.keys_dir,
        now,
        key_retention(config.auth.access_token_ttl),
    ) {
        Ok(kid) => {
            println!(
                "new signing key {kid} in {} (current in {})",
                config.keys_dir.display(),
                crate::auth::keys::MANIFEST_FILE
            );
            println!(
                "running servers pick it up within a minute; earlier keys keep verifying until their tokens expire"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rampart: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn create_admin(loaded: Loaded, email: String) -> anyhow::Result<()> {
    let mut config = loaded.config;
    let _log = telemetry::init(config.log_format, Some("warn"));
    let email = EmailAddress::parse(&email, "email")
        .map_err(|e| anyhow::anyhow!("--email {}", e.message))?;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let raw = line.trim_end_matches(['\r', '\n']).to_owned();
    let password = Password::parse_new(raw, "password", email.as_str()).map_err(|errors| {
        let reasons: Vec<String> = errors.into_iter().map(|e| e.message).collect();
        anyhow::anyhow!("the password is refused: {}", reasons.join("; "))
    })?;
    setup::prepare(&mut config)?;
    let db = application::open_database(&config).await?;
    let clock = Clock::system();
    let state = AppState::new(config, db.clone(), clock.clone())?;
    let hash = state
        .hasher
        .hash(&password)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = email.local_part().to_owned();
    let created = users::create(
        &db,
        &users::NewUser {
            email: email.as_str(),
            name: &name,
            password_hash: &hash,
            role: Role::Admin,
            email_verified: true,
        },
        clock.now_ms(),
    )
    .await?;
    if created.is_none() {
        users::promote(&db, email.as_str(), &hash, clock.now_ms()).await?;
        println!(
            "promoted {} to a verified admin (password replaced)",
            email.as_str()
        );
    } else {
        println!("created verified admin {}", email.as_str());
    }
    db.close().await;
    Ok(())
}
