-- Console accounts, browser sessions, API tokens and sign-in throttling (SQLite).
-- Never edit once released: add a new file. Times are microseconds since the epoch.

-- A console account belongs to a person of the roster (people.username).
CREATE TABLE console_accounts (
    username       TEXT PRIMARY KEY,
    role           TEXT NOT NULL,
    years          TEXT NOT NULL DEFAULT '',   -- comma separated, head_of_year only
    password_hash  TEXT NOT NULL,              -- Argon2id PHC string
    created_us     INTEGER NOT NULL,
    updated_us     INTEGER NOT NULL,
    disabled_us    INTEGER
);

-- A browser session: the cookie holds a random secret, the table its SHA-256.
CREATE TABLE console_sessions (
    secret_hash    TEXT PRIMARY KEY,
    username       TEXT NOT NULL,
    csrf_token     TEXT NOT NULL,
    client_ip      TEXT,
    created_us     INTEGER NOT NULL,
    last_seen_us   INTEGER NOT NULL,
    ended_us       INTEGER
);
CREATE INDEX console_sessions_user ON console_sessions(username, created_us);

-- Machine tokens: shown once, stored hashed; scopes are operation names.
CREATE TABLE api_tokens (
    name           TEXT PRIMARY KEY,
    secret_hash    TEXT NOT NULL UNIQUE,
    scopes         TEXT NOT NULL,              -- comma separated
    created_us     INTEGER NOT NULL,
    revoked_us     INTEGER
);

-- Failed sign-ins by key (`user:NAME`, `ip:ADDR`), for rate limits and lockout.
CREATE TABLE signin_failures (
    key            TEXT NOT NULL,
    at_us          INTEGER NOT NULL
);
CREATE INDEX signin_failures_key_at ON signin_failures(key, at_us);
