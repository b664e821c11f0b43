-- Browser-page sessions (API.md §9). The cookie carries a random id; only its HMAC
-- (keyed from RAMPART_SESSION_SECRET) is stored, so a database leak hands out no live
-- session. A pre-login session has no user; a signed-in one belongs to the session family
-- its login opened, so revoking that family (logout-all, password change, deactivation)
-- ends it too. `mfa_pending` is the hash of the step-up token of a login waiting for its
-- second factor in this browser.
CREATE TABLE browser_sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    family_id    TEXT,
    role         TEXT,
    mfa_pending  TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);
CREATE INDEX browser_sessions_family ON browser_sessions (family_id);
CREATE INDEX browser_sessions_seen ON browser_sessions (last_seen_at);
