-- The acceptable-use declaration at logon (issue 19; WCS ICT policy 000 §14): one row per
-- person, document and version accepted, with when, where (workstation) and from which
-- address. Accepting the same version again changes nothing (the unique key); a new
-- version of the document is a new row. Rows are the evidence: never updated.

CREATE TABLE declaration_acceptances (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    document     TEXT NOT NULL,
    version      TEXT NOT NULL,
    accepted_us  INTEGER NOT NULL,
    workstation  TEXT,
    ip           TEXT,
    actor        TEXT NOT NULL,
    UNIQUE (person_id, document, version)
);
CREATE INDEX declaration_acceptances_document ON declaration_acceptances(document, version);

-- The captive portal's guest codes (issue 19, item 3), in this migration too: a member
-- of staff issues a code for a visitor, which creates the visitor as a person (role
-- 'guest'); the code, typed on the block page until it expires, starts a logon session
-- for that person at the visitor's address. Only the code's SHA-256 is kept.
CREATE TABLE guest_codes (
    id          INTEGER PRIMARY KEY,
    code_hash   TEXT NOT NULL UNIQUE,
    person_id   INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    issued_by   TEXT NOT NULL,
    issued_us   INTEGER NOT NULL,
    expires_us  INTEGER NOT NULL
);
CREATE INDEX guest_codes_issued_by ON guest_codes(issued_by, expires_us);
