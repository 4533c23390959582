-- Live exceptions people make in the console and on the block page (issue 17):
-- * access_requests: "request access" from a block page; never grants anything itself.
-- * grants: what an approval (kind 'grant') or a warning's "continue" (kind 'ack')
--   lifts, for a person, a group or everyone, until a time or (until_us NULL) until the
--   policy changes. Ended rows stay: they are the record of what was open when.
-- * overrides: a teacher lifting one `teacher_override` rule for one class.
-- Open rows are few (what is in force now); the engine reads them every quarter second.

CREATE TABLE access_requests (
    id            INTEGER PRIMARY KEY,
    person        TEXT NOT NULL,
    client_ip     TEXT NOT NULL,
    target        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    rule          TEXT,
    safeguarding  INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL,              -- pending | approved | denied
    created_us    INTEGER NOT NULL,
    decided_by    TEXT,
    decided_us    INTEGER,
    decision_note TEXT,
    grant_id      INTEGER,
    draft         TEXT
);
CREATE INDEX access_requests_status ON access_requests(status, created_us);
CREATE INDEX access_requests_person ON access_requests(person, created_us);
CREATE INDEX access_requests_client ON access_requests(client_ip, created_us);

CREATE TABLE grants (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,                -- grant | ack
    scope       TEXT NOT NULL,                -- person | group | everyone
    subject     TEXT NOT NULL,                -- username, group name, or '' for everyone
    target      TEXT NOT NULL,                -- domain, or domain/path prefix
    until_us    INTEGER,                      -- NULL: until the policy changes
    request_id  INTEGER,
    created_by  TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    ended_us    INTEGER,
    ended_why   TEXT                          -- revoked | expired | policy-change
);
CREATE INDEX grants_open ON grants(ended_us, kind);
CREATE INDEX grants_subject ON grants(subject, created_us);

CREATE TABLE overrides (
    id          INTEGER PRIMARY KEY,
    group_name  TEXT NOT NULL,
    rule        TEXT NOT NULL,
    until_us    INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    ended_us    INTEGER,
    ended_why   TEXT
);
CREATE INDEX overrides_open ON overrides(ended_us);
