//! Account helpers named for intent: register, read the outbox, sign in, become admin.
use rampart::{
    domain::{password::Password, user::Role},
    store::users,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{TestApp, eventually};

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

impl Session {
    pub fn user_id(&self) -> Uuid {
        Uuid::parse_str(self.body["user"]["id"].as_str().unwrap()).unwrap()
    }
}

/// A fresh password that passes the policy.
pub fn strong_password() -> String {
    format!(
        "Violet-Harbor-{}-Quartz!",
        &Uuid::new_v4().simple().to_string()[..8]
    )
}

/// A fresh address.
pub fn fresh_email() -> String {
    format!(
        "user-{}@example.com",
        &Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The refresh token from a response's `Set-Cookie`, if one was set (non-empty).
pub fn refresh_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.strip_prefix("__Secure-rampart_refresh="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .find(|v| !v.is_empty())
}

/// The whole `Set-Cookie` of the refresh cookie.
pub fn refresh_set_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__Secure-rampart_refresh="))
        .map(str::to_owned)
}

/// Undo quoted-printable soft line breaks and `=3D`, enough to read links from a mail,
/// in a mail that says it is quoted-printable. Others are left alone: in a `7bit` mail a
/// link `?token=3Dx…` is a token that starts with `3D` (one token in 4 096).
fn unfold(eml: &str) -> String {
    let quoted_printable = eml.lines().take_while(|l| !l.is_empty()).any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("content-transfer-encoding:") && l.contains("quoted-printable")
    });
    if !quoted_printable {
        return eml.to_owned();
    }
    eml.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

#[test]
fn a_7bit_mail_is_read_as_it_is_and_a_quoted_printable_one_unfolded() {
    let link = "http://x/verify-email?token=3DabcDEF";
    let plain = format!("To: a@example.com\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{link}\r\n");
    assert!(unfold(&plain).contains(link));
    let qp = "To: a@example.com\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
              http://x/verify-email?token=3D3Dab=\r\ncDEF\r\n";
    assert!(unfold(qp).contains("token=3DabcDEF"), "{}", unfold(qp));
}

impl TestApp {
    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_bearer(
        &self,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> reqwest::Response {
        self.secret(password);
        self.post(
            "/api/v1/auth/register",
            json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    /// Every mail written to the outbox for `to` so far.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        let mut mails: Vec<(std::time::SystemTime, String)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| {
                let text = unfold(&std::fs::read_to_string(e.path()).ok()?);
                let modified = e.metadata().ok()?.modified().ok()?;
                text.lines()
                    .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.contains(to))
                    .then_some((modified, text))
            })
            .collect();
        mails.sort_by_key(|(t, _)| *t);
        mails.into_iter().map(|(_, m)| m).collect()
    }

    /// Wait (bounded) until `count` mails for `to` exist; mail is sent in the background.
    pub async fn wait_for_mails(&self, to: &str, count: usize) -> Vec<String> {
        eventually(&format!("{count} mails for {to}"), || async {
            let mails = self.mails_to(to);
            (mails.len() >= count).then_some(mails)
        })
        .await
    }

    /// The token of the newest link to `path` mailed to `to`.
    pub async fn mailed_token(&self, to: &str, path: &str, nth_mail: usize) -> String {
        let mails = self.wait_for_mails(to, nth_mail).await;
        let mail = &mails[nth_mail - 1];
        let marker = format!("{path}?token=");
        let start = mail
            .find(&marker)
            .unwrap_or_else(|| panic!("no {path} link in {mail}"))
            + marker.len();
        let token: String = mail[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert_eq!(token.len(), 43, "token in {mail}");
        self.secret(&token);
        token
    }

    /// Register and verify an account; returns its id.
    pub async fn verified_user(&self, email: &str, password: &str) -> Uuid {
        assert_eq!(
            self.register(email, password, "Test User").await.status(),
            202
        );
        let token = self.mailed_token(email, "/verify-email", 1).await;
        let verified = self
            .post("/api/v1/auth/verify-email", json!({"token": token}))
            .await;
        assert_eq!(verified.status(), 200);
        users::credentials_by_email(&self.db, email)
            .await
            .unwrap()
            .unwrap()
            .user
            .id
    }

    /// Sign in; panics unless the answer carries tokens.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let response = self
            .post(
                "/api/v1/auth/login",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let refresh = refresh_cookie(&response).expect("refresh cookie");
        let body: Value = response.json().await.unwrap();
        let access = body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned();
        self.secret(&access);
        self.secret(&refresh);
        Session {
            access,
            refresh,
            body,
        }
    }

    /// A new verified account, signed in.
    pub async fn signed_in_user(&self) -> (String, String, Session) {
        let email = fresh_email();
        let password = strong_password();
        self.verified_user(&email, &password).await;
        let session = self.login(&email, &password).await;
        (email, password, session)
    }

    /// A verified admin created directly in the store, signed in.
    pub async fn signed_in_admin(&self) -> Session {
        let email = fresh_email();
        let password = strong_password();
        self.secret(&password);
        let hash = self
            .state
            .hasher
            .hash(&Password::unchecked(password.clone()))
            .await
            .unwrap();
        users::create(
            &self.db,
            &users::NewUser {
                email: &email,
                name: "Admin",
                password_hash: &hash,
                role: Role::Admin,
                email_verified: true,
            },
            self.clock.now_ms(),
        )
        .await
        .unwrap()
        .unwrap();
        self.login(&email, &password).await
    }

    /// `POST /auth/refresh` with a refresh token in the cookie.
    pub async fn refresh(&self, refresh: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/refresh"))
            .header("cookie", format!("__Secure-rampart_refresh={refresh}"))
            .send()
            .await
            .unwrap()
    }
}
