//! Outgoing mail: verification links, password-reset links and account notices.
//!
//! Two backends behind one cheap-to-clone [`Mailer`]: the outbox (the development default,
//! API.md §1 `RAMPART_MAIL_OUTBOX`), which writes every mail as one RFC 5322 `.eml` file,
//! and SMTP (`RAMPART_SMTP_URL`).
//!
//! ```no_run
//! # async fn example() -> Result<(), rampart::mail::MailError> {
//! use rampart::mail::{Email, Mailer};
//!
//! let mailer = Mailer::outbox("./data/outbox", "Rampart <no-reply@localhost>")?;
//! mailer
//!     .send(Email {
//!         to: "ada@example.com".to_owned(),
//!         subject: "Verify your email address".to_owned(),
//!         text: "Open http://127.0.0.1:8080/verify-email?token=T to verify.".to_owned(),
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//! - Bodies carry one-time tokens: they are never logged, and [`Email`]'s `Debug` redacts
//!   them. Only the recipient's domain and the subject are logged, at debug level.
//! - Callers must treat a failed send as log-only and answer the client exactly as on
//!   success, so that a mail failure never reveals whether an account exists. Sending from
//!   the request task also makes the response time depend on the mail server: prefer
//!   [`Mailer::send_detached`], which sends in the background and logs any failure.
//! - The recipient must be a bare address and the subject must not contain control
//!   characters, so neither can inject a header (`Bcc:`) into the message.
//! - Outbox files are created with mode 0600 and appear atomically (written under a
//!   temporary name in the same directory, then renamed), so a reader never sees half a
//!   mail.
//! - [`Mailer::smtp`] refuses a URL that would send SMTP credentials without enforced TLS
//!   (`smtp://user:pass@host` or `?tls=opportunistic`) to a host other than the loopback
//!   interface; use `smtps://` or `smtp://…?tls=required`. Certificates are verified
//!   against the operating system's trust store.

use std::{
    fmt, fs,
    io::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    str::FromStr as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use lettre::{
    Address, AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{Body, Mailbox, SinglePart, header::ContentTransferEncoding, header::ContentType},
};
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use crate::clock::Clock;

pub mod templates;

/// How long one SMTP exchange may take before [`Mailer::send`] gives up.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// One plain-text mail to one recipient.
#[derive(Clone)]
pub struct Email {
    /// The recipient: a bare address (`ada@example.com`), no display name.
    pub to: String,
    /// The subject line: one line, no control characters.
    pub subject: String,
    /// The body, plain UTF-8 text. Holds tokens: never logged.
    pub text: String,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &"[REDACTED]")
            .finish()
    }
}

/// Why a mail could not be built or sent. No variant holds the body or the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The sender address given at construction is not a valid mailbox.
    #[error("the sender address is not a valid mailbox")]
    InvalidFrom,
    /// The recipient is not a bare, valid email address.
    #[error("the recipient is not a valid email address")]
    InvalidRecipient,
    /// The subject contains a line break or another control character.
    #[error("the subject contains control characters")]
    InvalidSubject,
    /// The SMTP URL could not be understood.
    #[error("the SMTP URL is not valid")]
    InvalidSmtpUrl(#[source] Option<lettre::transport::smtp::Error>),
    /// The SMTP URL would send credentials without enforced TLS to a remote host.
    #[error(
        "the SMTP URL sends credentials without enforced TLS to a remote host: \
         use smtps:// or ?tls=required"
    )]
    InsecureSmtpUrl,
    /// lettre refused to build the message.
    #[error("building the message")]
    Build(#[from] lettre::error::Error),
    /// Writing to the outbox failed.
    #[error("writing the mail to the outbox")]
    Outbox(#[from] std::io::Error),
    /// The SMTP server could not be reached or refused the mail.
    #[error("sending the mail over SMTP")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Sends mail through the outbox directory or an SMTP server. Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
    clock: Clock,
}

struct Inner {
    from: Mailbox,
    backend: Backend,
    /// Orders the outbox files of mails written within one millisecond of the clock.
    written: AtomicU64,
}

enum Backend {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.inner.backend {
            Backend::Outbox(dir) => format!("outbox({})", dir.display()),
            // The URL may hold a password: say only which backend this is.
            Backend::Smtp(_) => "smtp".to_owned(),
        };
        f.debug_struct("Mailer")
            .field("from", &self.inner.from.to_string())
            .field("backend", &backend)
            .finish()
    }
}

impl Mailer {
    /// Write every mail as one `.eml` file into `dir`, which must exist (`setup::prepare`
    /// creates it). File names sort in the order the mails were written: by the clock's
    /// milliseconds, then by a counter of this mailer. Touches nothing on disk until the
    /// first send.
    pub fn outbox(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        Self::new(from, Backend::Outbox(dir.into()))
    }

    /// Send over SMTP. `url` is `smtp://`, `smtps://` or `smtp://…?tls=required|opportunistic`
    /// with optional `user:password@` (percent-encoded), as lettre's `from_url` reads it.
    /// Does not connect: the server need not be reachable until the first send.
    pub fn smtp(url: &SecretString, from: &str) -> Result<Self, MailError> {
        let url = url.expose_secret();
        check_smtp_url(url)?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::InvalidSmtpUrl(Some(e)))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Self::new(from, Backend::Smtp(transport))
    }

    fn new(from: &str, backend: Backend) -> Result<Self, MailError> {
        let from = Mailbox::from_str(from).map_err(|_| MailError::InvalidFrom)?;
        Ok(Self {
            inner: Arc::new(Inner {
                from,
                backend,
                written: AtomicU64::new(0),
            }),
            clock: Clock::system(),
        })
    }

    /// Take the `Date` header and the outbox file order from `clock` (the application's
    /// one clock) instead of the system clock.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Send one mail. A failure must only be logged by the caller, never change what the
    /// client sees (see the module's `# Security`).
    pub async fn send(&self, email: Email) -> Result<(), MailError> {
        let to = Address::from_str(email.to.trim()).map_err(|_| MailError::InvalidRecipient)?;
        if email.subject.chars().any(char::is_control) {
            return Err(MailError::InvalidSubject);
        }
        let domain = to.domain().to_owned();
        match &self.inner.backend {
            Backend::Outbox(dir) => {
                // The outbox is read by people and tests: a non-ASCII body stays readable
                // (8bit) rather than quoted-printable, so links come out exactly.
                let message = self.message(to, &email.subject, email.text, true)?;
                let dir = dir.clone();
                let bytes = message.formatted();
                // Nanoseconds (at the clock's millisecond resolution), as earlier versions
                // named the files, so an outbox of both versions still sorts by time.
                let stem = format!(
                    "{:020}-{:010}-{}",
                    self.clock.now_ms().max(0).saturating_mul(1_000_000),
                    self.inner.written.fetch_add(1, Ordering::Relaxed),
                    Uuid::new_v4().simple()
                );
                let path =
                    tokio::task::spawn_blocking(move || write_to_outbox(&dir, &stem, &bytes))
                        .await
                        .map_err(std::io::Error::other)??;
                tracing::debug!(
                    recipient_domain = %domain,
                    subject = %email.subject,
                    file = %path.display(),
                    "mail written to the outbox"
                );
            }
            Backend::Smtp(transport) => {
                // Over SMTP an ASCII body goes as 7bit and anything else as lettre chooses
                // (quoted-printable or base64): 8bit would need the server's 8BITMIME.
                let message = self.message(to, &email.subject, email.text, false)?;
                transport.send(message).await?;
                tracing::debug!(recipient_domain = %domain, subject = %email.subject, "mail sent over SMTP");
            }
        }
        Ok(())
    }

    /// Send in a background task and log a failure (without the body) at warn level, so that
    /// neither the outcome nor the latency of the mail server reaches the client. Outside a
    /// Tokio runtime the mail is dropped and an error logged.
    pub fn send_detached(&self, email: Email) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("mail dropped: no Tokio runtime to send it from");
            return;
        };
        let mailer = self.clone();
        runtime.spawn(async move {
            let subject = email.subject.clone();
            if let Err(error) = mailer.send(email).await {
                tracing::warn!(%subject, error = %error_chain(&error), "mail not sent");
            }
        });
    }

    fn message(
        &self,
        to: Address,
        subject: &str,
        text: String,
        prefer_8bit: bool,
    ) -> Result<Message, MailError> {
        let body = match unencoded_body(&text) {
            Some((bytes, ContentTransferEncoding::SevenBit)) => {
                Body::dangerous_pre_encoded(bytes, ContentTransferEncoding::SevenBit)
            }
            Some((bytes, encoding)) if prefer_8bit => Body::dangerous_pre_encoded(bytes, encoding),
            _ => Body::new(text),
        };
        let message_id = format!(
            "<{}@{}>",
            Uuid::new_v4().simple(),
            self.inner.from.email.domain()
        );
        let message = Message::builder()
            .from(self.inner.from.clone())
            .to(Mailbox::new(None, to))
            .subject(subject)
            .date(self.clock.now_system_time())
            .message_id(Some(message_id))
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(body),
            )?;
        Ok(message)
    }
}

/// The body as it can go out without a transfer encoding: CRLF line endings, and `7bit`
/// when it is ASCII or `8bit` otherwise (RFC 2045 §2.7–2.8); `None` when a line is longer
/// than RFC 5322's 998 octets or the text holds a NUL. lettre's own choice would switch to
/// quoted-printable from 76 characters a line, which splits links and turns `=` into `=3D`.
fn unencoded_body(text: &str) -> Option<(Vec<u8>, ContentTransferEncoding)> {
    let mut lines = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > 998 || line.contains(['\r', '\0']) {
            return None;
        }
        lines.push(line);
    }
    let encoding = if text.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Some((lines.join("\r\n").into_bytes(), encoding))
}

/// The error and its causes on one line, for a log field.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Refuse SMTP credentials that would cross the network without enforced TLS.
fn check_smtp_url(raw: &str) -> Result<(), MailError> {
    let url = url::Url::parse(raw).map_err(|_| MailError::InvalidSmtpUrl(None))?;
    let has_credentials = !url.username().is_empty() || url.password().is_some();
    let tls = url
        .query_pairs()
        .find(|(key, _)| key == "tls")
        .map(|(_, value)| value.into_owned());
    let enforced_tls = url.scheme() == "smtps" || tls.as_deref() == Some("required");
    let loopback = match url.host() {
        // `smtp` is not a special scheme to the URL parser: an IPv4 host stays text.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if has_credentials && !enforced_tls && !loopback {
        return Err(MailError::InsecureSmtpUrl);
    }
    if !enforced_tls && !loopback {
        tracing::warn!(
            "SMTP without enforced TLS: mail (and the tokens in it) may cross the network in clear"
        );
    }
    Ok(())
}

/// Write `bytes` as a new `{stem}.eml` file in `dir`: mode 0600, under a temporary name
/// first, then renamed, so the file appears whole or not at all.
fn write_to_outbox(dir: &Path, stem: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    // A leading dot keeps the partial file out of `*.eml` globs.
    let temporary = dir.join(format!(".{stem}.tmp"));
    let path = dir.join(format!("{stem}.eml"));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| fs::rename(&temporary, &path)) {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "Rampart <no-reply@localhost>";
    const LINK: &str = "http://127.0.0.1:8080/verify-email?token=abc_-123";

    fn email(to: &str, subject: &str, text: &str) -> Email {
        Email {
            to: to.to_owned(),
            subject: subject.to_owned(),
            text: text.to_owned(),
        }
    }

    /// Every `.eml` file of the outbox, oldest first.
    fn outbox_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
    }

    /// The most recent link in the outbox for `to` that starts with `prefix`: how the
    /// integration tests will read tokens out of the outbox.
    fn latest_link(dir: &Path, to: &str, prefix: &str) -> Option<String> {
        outbox_files(dir).iter().rev().find_map(|path| {
            let text = fs::read_to_string(path).ok()?;
            let (headers, body) = text.split_once("\r\n\r\n")?;
            headers
                .lines()
                .any(|line| line.eq_ignore_ascii_case(&format!("To: {to}")))
                .then(|| {
                    body.split_whitespace()
                        .find(|word| word.starts_with(prefix))
                        .map(str::to_owned)
                })?
        })
    }

    fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
        let (headers, _) = text.split_once("\r\n\r\n")?;
        headers.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(": ")?;
            key.eq_ignore_ascii_case(name).then_some(value)
        })
    }

    #[tokio::test]
    async fn the_outbox_holds_one_complete_message_per_mail() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox(dir.path(), FROM).unwrap();
        let text = format!("Welcome!\n\nOpen {LINK} to verify your address.\n");
        mailer
            .send(email("ada@example.com", "Verify your email address", &text))
            .await
            .unwrap();

        let files = outbox_files(dir.path());
        assert_eq!(files.len(), 1);
        let raw = fs::read_to_string(&files[0]).unwrap();
        assert_eq!(header(&raw, "To"), Some("ada@example.com"));
        assert_eq!(header(&raw, "From"), Some("Rampart <no-reply@localhost>"));
        assert_eq!(header(&raw, "Subject"), Some("Verify your email address"));
        assert!(header(&raw, "Date").is_some());
        let id = header(&raw, "Message-ID").unwrap();
        assert!(id.starts_with('<') && id.ends_with("@localhost>"), "{id}");
        assert_eq!(header(&raw, "Content-Transfer-Encoding"), Some("7bit"));
        assert!(raw.contains(&format!("Open {LINK} to verify your address.")));
        assert_eq!(
            latest_link(
                dir.path(),
                "ada@example.com",
                "http://127.0.0.1:8080/verify-email"
            ),
            Some(LINK.to_owned())
        );
        // Nothing but the finished file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn a_link_in_a_non_ascii_body_is_written_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox(dir.path(), FROM).unwrap();
        let text = format!("Bonjour José,\n\nOuvrez {LINK} — merci.\n");
        mailer
            .send(email("jose@example.com", "Vérifiez votre adresse", &text))
            .await
            .unwrap();
        let raw = fs::read_to_string(&outbox_files(dir.path())[0]).unwrap();
        assert_eq!(header(&raw, "Content-Transfer-Encoding"), Some("8bit"));
        assert!(raw.contains("Bonjour José,"));
        assert_eq!(
            latest_link(dir.path(), "jose@example.com", "http://127.0.0.1:8080/"),
            Some(LINK.to_owned())
        );
    }

    #[tokio::test]
    async fn a_long_link_is_neither_wrapped_nor_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox(dir.path(), FROM).unwrap();
        let link = format!(
            "http://127.0.0.1:8080/reset-password?token={}",
            "Ab9_-".repeat(20)
        );
        let text = format!("Someone asked to reset your password. If it was you, open {link}\n");
        mailer
            .send(email("ada@example.com", "Reset your password", &text))
            .await
            .unwrap();
        let raw = fs::read_to_string(&outbox_files(dir.path())[0]).unwrap();
        assert_eq!(header(&raw, "Content-Transfer-Encoding"), Some("7bit"));
        assert_eq!(
            latest_link(dir.path(), "ada@example.com", "http://127.0.0.1:8080/reset"),
            Some(link)
        );
    }

    #[test]
    fn over_smtp_ascii_goes_as_7bit_and_anything_else_is_encoded() {
        let mailer = Mailer::smtp(&SecretString::from("smtp://127.0.0.1:2525"), FROM).unwrap();
        let to = || Address::from_str("ada@example.com").unwrap();
        let encoding = |message: Message| {
            let raw = String::from_utf8(message.formatted()).unwrap();
            header(&raw, "Content-Transfer-Encoding").map(str::to_owned)
        };
        let ascii = mailer
            .message(to(), "Hi", format!("{LINK} {}", "x".repeat(100)), false)
            .unwrap();
        assert_eq!(encoding(ascii).as_deref(), Some("7bit"));
        let accented = mailer
            .message(to(), "Hi", "Bonjour José".to_owned(), false)
            .unwrap();
        assert_eq!(encoding(accented).as_deref(), Some("quoted-printable"));
    }

    #[test]
    fn a_body_breaking_the_line_limit_falls_back_to_an_encoding() {
        assert!(unencoded_body(&"x".repeat(998)).is_some());
        assert!(unencoded_body(&"x".repeat(999)).is_none());
        assert!(unencoded_body("a\0b").is_none());
        assert!(unencoded_body("a\rb").is_none());
        let (bytes, _) = unencoded_body("a\nb\r\nc\n").unwrap();
        assert_eq!(bytes, b"a\r\nb\r\nc\r\n");
        let mailer = Mailer::outbox("/nonexistent", FROM).unwrap();
        let to = Address::from_str("ada@example.com").unwrap();
        let message = mailer.message(to, "Hi", "y".repeat(2000), true).unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert_eq!(
            header(&raw, "Content-Transfer-Encoding"),
            Some("quoted-printable")
        );
    }

    #[tokio::test]
    async fn the_latest_mail_to_an_address_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox(dir.path(), FROM).unwrap();
        for token in ["first", "second"] {
            let text = format!("http://x/reset-password?token={token}");
            mailer
                .send(email("ada@example.com", "Reset", &text))
                .await
                .unwrap();
        }
        mailer
            .send(email(
                "bob@example.com",
                "Reset",
                "http://x/reset-password?token=bob",
            ))
            .await
            .unwrap();
        assert_eq!(
            latest_link(dir.path(), "ada@example.com", "http://x/reset-password"),
            Some("http://x/reset-password?token=second".to_owned())
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn outbox_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox(dir.path(), FROM).unwrap();
        mailer
            .send(email("ada@example.com", "Hello", "Hi"))
            .await
            .unwrap();
        let mode = fs::metadata(&outbox_files(dir.path())[0])
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn header_injection_in_the_recipient_or_subject_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox(dir.path(), FROM).unwrap();
        for to in [
            "a@b.c\r\nBcc: evil@x",
            "a@b.c\nBcc: evil@x",
            "a@b.c, evil@x",
            "Ada <a@b.c>",
            "",
        ] {
            let result = mailer.send(email(to, "Hello", "Hi")).await;
            assert!(
                matches!(result, Err(MailError::InvalidRecipient)),
                "{to:?}: {result:?}"
            );
        }
        for subject in [
            "Hello\r\nBcc: evil@x",
            "Hello\nBcc: evil@x",
            "Hello\rX",
            "a\u{0}b",
        ] {
            let result = mailer.send(email("ada@example.com", subject, "Hi")).await;
            assert!(
                matches!(result, Err(MailError::InvalidSubject)),
                "{subject:?}: {result:?}"
            );
        }
        assert!(outbox_files(dir.path()).is_empty());
    }

    #[test]
    fn lettre_encodes_rather_than_passes_a_line_break_in_the_subject() {
        // Defence in depth under our own check: lettre itself never writes a raw CRLF.
        let mailer = Mailer::outbox("/nonexistent", FROM).unwrap();
        let to = Address::from_str("ada@example.com").unwrap();
        let message = mailer
            .message(to, "Hello\r\nBcc: evil@x", "Hi".to_owned(), true)
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn an_invalid_sender_is_refused_at_construction() {
        assert!(matches!(
            Mailer::outbox("/tmp", "not an address"),
            Err(MailError::InvalidFrom)
        ));
    }

    #[test]
    fn the_body_never_appears_in_debug_output() {
        let text = format!("{:?}", email("ada@example.com", "Reset", LINK));
        assert!(!text.contains("abc_-123"), "{text}");
        assert!(text.contains("ada@example.com"));
    }

    #[test]
    fn an_smtp_mailer_is_built_without_connecting() {
        let url = SecretString::from("smtp://user:pass@127.0.0.1:2525");
        let mailer = Mailer::smtp(&url, FROM).unwrap();
        let debug = format!("{mailer:?}");
        assert!(!debug.contains("pass"), "{debug}");
        Mailer::smtp(
            &SecretString::from("smtps://user:pass@mail.example.com"),
            FROM,
        )
        .unwrap();
        Mailer::smtp(
            &SecretString::from("smtp://user:pass@mail.example.com?tls=required"),
            FROM,
        )
        .unwrap();
    }

    #[test]
    fn smtp_credentials_without_enforced_tls_to_a_remote_host_are_refused() {
        for url in [
            "smtp://user:pass@mail.example.com",
            "smtp://user:pass@mail.example.com:587?tls=opportunistic",
            "smtp://user@10.0.0.5:25",
        ] {
            let result = Mailer::smtp(&SecretString::from(url), FROM);
            assert!(
                matches!(result, Err(MailError::InsecureSmtpUrl)),
                "{url}: {result:?}"
            );
        }
        assert!(matches!(
            Mailer::smtp(&SecretString::from("not a url"), FROM),
            Err(MailError::InvalidSmtpUrl(_))
        ));
        assert!(matches!(
            Mailer::smtp(&SecretString::from("http://mail.example.com"), FROM),
            Err(MailError::InvalidSmtpUrl(_))
        ));
    }

    #[tokio::test]
    async fn sending_to_a_closed_smtp_port_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = SecretString::from(format!("smtp://127.0.0.1:{port}"));
        let mailer = Mailer::smtp(&url, FROM).unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            mailer.send(email("ada@example.com", "Hello", "Hi")),
        )
        .await
        .expect("sending to a closed port should fail fast, not hang");
        assert!(matches!(result, Err(MailError::Smtp(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_detached_send_writes_the_mail_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer::outbox(dir.path(), FROM).unwrap();
        mailer.send_detached(email("ada@example.com", "Hello", "Hi"));
        crate::testing::eventually("the detached mail reaching the outbox", || async {
            (!outbox_files(dir.path()).is_empty()).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn a_manual_clock_dates_the_mail_and_orders_the_outbox_within_one_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        // 2027-01-15T08:00:00Z: nowhere near the wall clock, and it never moves.
        let clock = Clock::manual(1_800_000_000_000);
        let mailer = Mailer::outbox(dir.path(), FROM)
            .unwrap()
            .with_clock(clock.clone());
        for token in ["first", "second", "third"] {
            let text = format!("http://x/reset-password?token={token}");
            mailer
                .send(email("ada@example.com", "Reset", &text))
                .await
                .unwrap();
        }
        let files = outbox_files(dir.path());
        assert_eq!(files.len(), 3);
        let raw = fs::read_to_string(&files[0]).unwrap();
        let date = header(&raw, "Date").unwrap();
        let parsed =
            time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822)
                .unwrap();
        assert_eq!(parsed.unix_timestamp(), clock.now_secs(), "{date}");
        assert_eq!(
            latest_link(dir.path(), "ada@example.com", "http://x/reset-password"),
            Some("http://x/reset-password?token=third".to_owned()),
            "same millisecond: the write order decides"
        );
    }
}
