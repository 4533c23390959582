-- Hallpass store, schema version 1 (SQLite). Never edit once released: add a new file.
-- Times are microseconds since the Unix epoch (UTC) in 64-bit integers, on both databases.

CREATE TABLE sites (
    id    INTEGER PRIMARY KEY,
    code  TEXT NOT NULL UNIQUE,
    name  TEXT NOT NULL
);

CREATE TABLE people (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    year_group    TEXT,
    form          TEXT,
    email         TEXT,
    mis_id        TEXT,
    site_id       INTEGER REFERENCES sites(id),
    updated_us    INTEGER NOT NULL
);

CREATE TABLE groups (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    site_id  INTEGER REFERENCES sites(id)
);

CREATE TABLE memberships (
    group_id   INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    person_id  INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, person_id)
);
CREATE INDEX memberships_person ON memberships(person_id);

CREATE TABLE logon_sessions (
    id            INTEGER PRIMARY KEY,
    person_id     INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    workstation   TEXT,
    ip            TEXT NOT NULL,
    started_us    INTEGER NOT NULL,
    last_seen_us  INTEGER NOT NULL,
    ended_us      INTEGER
);
CREATE INDEX logon_sessions_active_ip ON logon_sessions(ip) WHERE ended_us IS NULL;
CREATE INDEX logon_sessions_person ON logon_sessions(person_id, started_us);

-- One row per decision or observation. Metadata only: content lives in event_content.
-- Keyed by event_uid: 16 bytes, the first 6 the event's time in milliseconds, so the
-- primary key is also the time index (retention and time ranges scan a key range) and
-- inserts append at its end; the uid makes replaying a batch idempotent.
CREATE TABLE events (
    event_uid   BLOB PRIMARY KEY,
    kind        TEXT NOT NULL,             -- dns | web | mail | file | logon
    at_us       INTEGER NOT NULL,
    person      TEXT,                      -- username, NULL when unidentified
    year_group  TEXT,                      -- denormalised at record time (reports)
    client_ip   TEXT,
    device      TEXT,
    target      TEXT NOT NULL,
    categories  TEXT NOT NULL DEFAULT '',  -- comma separated category names
    verdict     TEXT NOT NULL,
    rule        TEXT,
    document    TEXT,
    clause      TEXT,
    bytes       INTEGER,
    detail      TEXT                       -- small JSON object (qtype, rcode, cache_hit, ...)
) WITHOUT ROWID;
-- Blocked attempts by time: per-person and per-target reports.
CREATE INDEX events_blocked_at ON events(at_us) WHERE verdict = 'block';

-- Content (a search term, a message body, a file name), keyed to its event, so that access
-- to it can be restricted and audited separately from metadata.
CREATE TABLE event_content (
    event_uid  BLOB PRIMARY KEY,
    kind       TEXT NOT NULL,
    at_us      INTEGER NOT NULL,
    content    TEXT NOT NULL
);
CREATE INDEX event_content_kind_at ON event_content(kind, at_us);

-- Blocked attempts rolled up per UTC day, year group, kind and category, maintained by the
-- event writer in the same transaction as the events. category '' counts each blocked
-- event once (whatever its categories). Aggregates only: no person, so retention keeps it.
CREATE TABLE blocked_daily (
    year_group  TEXT NOT NULL,             -- '' when unknown
    day         INTEGER NOT NULL,          -- days since 1970-01-01 (UTC)
    kind        TEXT NOT NULL,
    category    TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (year_group, day, kind, category)
);
CREATE INDEX blocked_daily_day ON blocked_daily(day);

-- Tamper-evident audit log: hash = sha256(canonical(seq, at_us, actor, action, subject,
-- details, prev_hash)).
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at_us      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
