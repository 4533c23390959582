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
