-- Alerts and the notification outbox.
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
