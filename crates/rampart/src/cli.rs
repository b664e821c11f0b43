//! The `rampart` command line.

use std::{collections::HashMap, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::{
    app,
    auth::keys::KeyRing,
    clock::Clock,
    config::{Config, Environment, Loaded},
    domain::{password::Password, user::EmailAddress, user::Role},
    server::{self, ServeOptions},
    setup,
    state::AppState,
    store::Db,
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
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key and make it current; old keys keep verifying until the
    /// longest token they signed has expired, then are deleted.
    Rotate,
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let vars = environment();
    let loaded = match Config::load(&vars) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("rampart: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::CheckConfig => check_config(&loaded),
        Command::Serve => block_on(serve(loaded, vars.get("RAMPART_LOG").cloned())),
        Command::Migrate => block_on(migrate(loaded, vars.get("RAMPART_LOG").cloned())),
        Command::CreateAdmin { email, .. } => block_on(create_admin(loaded, email)),
        Command::Keys {
            command: KeysCommand::Rotate,
        } => keys_rotate(&loaded.config),
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

/// Refuse production on any finding; in development warn about each.
fn enforce(config: &Config) -> anyhow::Result<()> {
    let findings = config.audit();
    if config.env == Environment::Production && !findings.is_empty() {
        for f in &findings {
            tracing::error!(setting = f.as_str(), "insecure or missing setting");
        }
        anyhow::bail!(
            "production refuses to start:\n  - {}",
            findings.join("\n  - ")
        );
    }
    for f in &findings {
        tracing::warn!(
            finding = f.as_str(),
            "insecure setting, accepted in development only"
        );
    }
    Ok(())
}

async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url, config.tunables.db_max_connections).await?;
    db.migrate().await?;
    Ok(db)
}

async fn migrate(loaded: Loaded, log_filter: Option<String>) -> anyhow::Result<()> {
    let mut config = loaded.config;
    telemetry::init(config.log_format, log_filter.as_deref());
    setup::prepare(&mut config)?;
    let db = open_database(&config).await?;
    db.close().await;
    tracing::info!(database = %config.database_url, "migrations applied");
    Ok(())
}

async fn serve(loaded: Loaded, log_filter: Option<String>) -> anyhow::Result<()> {
    let mut config = loaded.config;
    telemetry::init(config.log_format, log_filter.as_deref());
    for warning in &loaded.warnings {
        tracing::warn!(warning = warning.as_str(), "configuration");
    }
    // Production refuses before touching anything; development first generates what is
    // missing, then warns about what remains insecure.
    if config.env == Environment::Production {
        enforce(&config)?;
    }
    let created = setup::prepare(&mut config)?;
    for path in &created.0 {
        tracing::info!(path = %path.display(), "created");
    }
    if config.env == Environment::Development {
        enforce(&config)?;
    }
    let tls = match &config.tls {
        Some(files) => Some(server::tls_acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let db = open_database(&config).await?;
    let options = ServeOptions {
        header_read_timeout: config.tunables.header_read_timeout,
        shutdown_grace: config.tunables.shutdown_grace,
        tls,
        h2c: config.tunables.h2c,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding RAMPART_LISTEN ({})", config.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(
        listen = %local,
        scheme = if options.tls.is_some() { "https" } else { "http" },
        env = ?config.env,
        database = %config.database_url,
        data_dir = %config.data_dir.display(),
        "rampart is serving"
    );
    let state = AppState::new(config, db.clone(), Clock::system())?;
    state.spawn_key_reloader(std::time::Duration::from_secs(60));
    let result = server::serve(
        listener,
        app::build(state),
        options,
        server::shutdown_signal(),
    )
    .await;
    db.close().await;
    tracing::info!("database closed; bye");
    result
}

/// How long a key keeps verifying after it stopped signing: the longest token it signed
/// plus the verification leeway.
pub fn key_retention(config: &Config) -> std::time::Duration {
    config.auth.access_token_ttl + crate::auth::tokens::DEFAULT_LEEWAY
}

fn keys_rotate(config: &Config) -> ExitCode {
    let now = time::OffsetDateTime::now_utc();
    match KeyRing::rotate(&config.keys_dir, now, key_retention(config)) {
        Ok(kid) => {
            println!("new signing key {kid} in {}", config.keys_dir.display());
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
    telemetry::init(config.log_format, Some("warn"));
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
    let db = open_database(&config).await?;
    let state = AppState::new(config, db.clone(), Clock::system())?;
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
    )
    .await?;
    if created.is_none() {
        users::promote(&db, email.as_str(), &hash).await?;
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
