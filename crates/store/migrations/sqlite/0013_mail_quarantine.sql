-- The email filter's quarantine (issue 21): messages a mail rule held, kept whole (the
-- envelope and the original bytes) until ICT support or the DSL releases them (the mail
-- service then delivers each once through the next hop) or deletes them (the bytes are
-- dropped; the row stays as the record). Who decided, when and why is also audited.
-- status: held | release (asked for, waiting for the mail service) | releasing (being
-- delivered) | released | refused (by the next hop, for good) | deleted.

CREATE TABLE mail_quarantine (
    id              INTEGER PRIMARY KEY,
    held_us         INTEGER NOT NULL,
    sender          TEXT NOT NULL,              -- envelope MAIL FROM, '' for a bounce
    recipients      TEXT NOT NULL,              -- envelope RCPT TO, a JSON array
    person          TEXT,                       -- the sender's username, when known
    rule            TEXT,
    document        TEXT,
    clause          TEXT,
    reason          TEXT NOT NULL,              -- the rule's message
    detectors       TEXT NOT NULL,              -- JSON array: attachment:..., language:...
    size            INTEGER NOT NULL,
    message         BLOB NOT NULL,              -- the original bytes; empty once deleted
    status          TEXT NOT NULL,
    decided_by      TEXT,
    decided_us      INTEGER,
    decision_reason TEXT,
    released_us     INTEGER
);
CREATE INDEX mail_quarantine_status ON mail_quarantine(status, held_us);

-- The mail journal (000 §3.3.1: monitoring "as well as deleted messages"): a copy of
-- every message the filter delivered, in or out, as it arrived (envelope and original
-- bytes), kept for [mail] journal_days. Content: read only through an investigation.
CREATE TABLE mail_journal (
    id          INTEGER PRIMARY KEY,
    at_us       INTEGER NOT NULL,
    direction   TEXT NOT NULL,                  -- inbound | outbound | internal
    sender      TEXT NOT NULL,
    recipients  TEXT NOT NULL,                  -- a JSON array
    person      TEXT,
    size        INTEGER NOT NULL,
    message     BLOB NOT NULL
);
CREATE INDEX mail_journal_at ON mail_journal(at_us);
CREATE INDEX mail_journal_person ON mail_journal(person, at_us) WHERE person IS NOT NULL;

-- Senders ICT support blocked from the console (001: "senders the IT Service Desk can
-- block"), beside the policy file's blocked senders: an address or a domain (and its
-- subdomains), lower case. Adding and removing are audited.
CREATE TABLE mail_sender_blocks (
    id          INTEGER PRIMARY KEY,
    sender      TEXT NOT NULL UNIQUE,
    reason      TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    added_us    INTEGER NOT NULL
);
