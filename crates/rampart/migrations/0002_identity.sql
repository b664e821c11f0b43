-- Identity: accounts, session families with their refresh tokens, one-time tokens
-- (email verification, password reset, MFA step-up), recovery codes, security events.
-- Portable across SQLite and PostgreSQL: text ids, integer millisecond times, integer
-- booleans. Secrets are stored only as SHA-256 hashes, except the TOTP secret, which the
-- server needs in clear to compute codes.
CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,
    name                TEXT NOT NULL,
    bio                 TEXT NOT NULL DEFAULT '',
    password_hash       TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    active              INTEGER NOT NULL DEFAULT 1,
    email_verified      INTEGER NOT NULL DEFAULT 0,
    mfa_enabled         INTEGER NOT NULL DEFAULT 0,
    totp_secret         TEXT,
    totp_pending_secret TEXT,
    totp_last_step      BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE session_families (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL
);
CREATE INDEX session_families_user ON session_families (user_id, created_at);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES session_families (id) ON DELETE CASCADE,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    rotated_at  BIGINT,
    grace_used  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    failures   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE security_events (
    id          TEXT PRIMARY KEY,
    type        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    request_id  TEXT NOT NULL,
    ip          TEXT NOT NULL,
    user_agent  TEXT NOT NULL,
    user_id     TEXT,
    route       TEXT NOT NULL,
    details     TEXT NOT NULL
);
CREATE INDEX security_events_time ON security_events (occurred_at);
CREATE INDEX security_events_type ON security_events (type, occurred_at);
CREATE INDEX security_events_user ON security_events (user_id, occurred_at);
