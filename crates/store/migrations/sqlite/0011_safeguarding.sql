-- Safeguarding: alerts, incidents, sanctions, investigations, and the notification outbox.
-- * alerts: something a person should look at (a conduct or safeguarding concern), routed
--   to the role that handles it, with a status people move on. Repeats of the same
--   person and theme within a window fold into one alert with a count.
-- * alert_occurrences: each thing that raised or fed an alert, once (its key: a session
--   pair, a decision id), with its evidence as metadata (never content).
-- * outbox: notification emails waiting for (or sent through) the school's SMTP relay;
--   written in the same transaction as what they tell, so none is lost.

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    person      TEXT NOT NULL,              -- username
    year_group  TEXT,                       -- the pupil's, for heads of year
    kind        TEXT NOT NULL,              -- conduct | safeguarding
    theme       TEXT NOT NULL,              -- shared-credentials, self-harm, ...
    severity    INTEGER NOT NULL,           -- 1 (low) .. 5 (imminent risk)
    route       TEXT NOT NULL,              -- the role that handles it
    document    TEXT,
    clause      TEXT,
    summary     TEXT NOT NULL,
    status      TEXT NOT NULL,              -- new | acknowledged | escalated | closed
    outcome     TEXT,
    count       INTEGER NOT NULL,
    first_us    INTEGER NOT NULL,
    last_us     INTEGER NOT NULL,
    updated_by  TEXT,
    updated_us  INTEGER
);
CREATE INDEX alerts_person ON alerts(person, last_us);
CREATE INDEX alerts_route ON alerts(route, status, last_us);
CREATE INDEX alerts_last ON alerts(last_us);

CREATE TABLE alert_occurrences (
    id          INTEGER PRIMARY KEY,
    alert_id    INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    key         TEXT NOT NULL UNIQUE,
    at_us       INTEGER NOT NULL,
    evidence    TEXT NOT NULL               -- JSON, metadata only
);
CREATE INDEX alert_occurrences_alert ON alert_occurrences(alert_id, at_us);

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    person      TEXT,                       -- whom it is for, for export and erasure
    created_us  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_us     INTEGER NOT NULL,
    sent_us     INTEGER,
    last_error  TEXT
);
CREATE INDEX outbox_due ON outbox(sent_us, next_us);
CREATE INDEX outbox_person ON outbox(person, created_us);

-- * incidents: case management, opened from an alert or by hand, assigned to the pupil's
--   head of year; incident_actions is its chronology (who did what, when).
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,
    person      TEXT NOT NULL,
    year_group  TEXT,
    staff_case  INTEGER NOT NULL DEFAULT 0,
    title       TEXT NOT NULL,
    alert_id    INTEGER,
    assigned_to TEXT,
    status      TEXT NOT NULL,              -- open | closed
    outcome     TEXT,
    opened_by   TEXT NOT NULL,
    opened_us   INTEGER NOT NULL,
    closed_us   INTEGER
);
CREATE INDEX incidents_person ON incidents(person, opened_us);
CREATE INDEX incidents_open ON incidents(status, year_group);

CREATE TABLE incident_actions (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,              -- note | interview | parents-informed | referral-police | referral-social-care | sanction | outcome
    details     TEXT NOT NULL,
    by_whom     TEXT NOT NULL,
    at_us       INTEGER NOT NULL
);
CREATE INDEX incident_actions_incident ON incident_actions(incident_id, at_us);

-- * sanctions: a person's internet, email or network access (or one site) withdrawn until
--   a time; the engine reads those in force with the other live exceptions.
CREATE TABLE sanctions (
    id          INTEGER PRIMARY KEY,
    person      TEXT NOT NULL,
    kind        TEXT NOT NULL,              -- internet | email | network | site
    target      TEXT,                       -- the site, for kind site
    until_us    INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    clause      TEXT,                       -- the policy clause it cites, when given
    incident_id INTEGER,
    created_by  TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    ended_us    INTEGER,
    ended_why   TEXT                        -- revoked | expired
);
CREATE INDEX sanctions_open ON sanctions(ended_us);
CREATE INDEX sanctions_person ON sanctions(person, created_us);

-- * investigations: the only way to read the content of someone's activity (search terms,
--   message text, full URLs): authorised by the headteacher (or the DSL for a
--   child-protection concern), naming the person, purpose, time range and expiry.
CREATE TABLE investigations (
    id            INTEGER PRIMARY KEY,
    person        TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    from_us       INTEGER NOT NULL,
    to_us         INTEGER NOT NULL,
    until_us      INTEGER NOT NULL,
    authorised_by TEXT NOT NULL,
    created_us    INTEGER NOT NULL,
    ended_us      INTEGER
);
CREATE INDEX investigations_person ON investigations(person, until_us);
