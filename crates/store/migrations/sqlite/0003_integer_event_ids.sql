-- Events keyed by a 64-bit integer instead of a 16-byte uid. In SQLite an INTEGER PRIMARY
-- KEY is the row's own address, so a row needs no separate key b-tree entry: measured
-- with `store-layouts`, about a fifth less CPU per DNS query event and 20 bytes less per
-- row. The id is still time-ordered: the event's millisecond times 2^21, plus 21 bits
-- that make it unique (the recording writer's slot and a sequence number; see EventId).
-- Existing rows keep their millisecond and are numbered within it in uid order. Content
-- rows take their event's id (and the same numbering when their event has already gone).
-- Runs in one transaction; on a large store it copies every row once.

CREATE TABLE event_ids_0003 AS
SELECT event_uid,
       ((at_us / 1000) << 21)
         + ROW_NUMBER() OVER (PARTITION BY at_us / 1000 ORDER BY event_uid) - 1 AS event_id
FROM (SELECT event_uid, MIN(at_us) AS at_us
      FROM (SELECT event_uid, at_us FROM events
            UNION ALL SELECT event_uid, at_us FROM event_content) AS both_tables
      GROUP BY event_uid) AS uids;

CREATE TABLE events_0003 (
    event_id         INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,             -- dns | web | mail | file | logon
    at_us            INTEGER NOT NULL,
    person           TEXT,                      -- username, NULL when unidentified
    year_group       TEXT,                      -- denormalised at record time (reports)
    client_ip        TEXT,
    device           TEXT,
    target           TEXT NOT NULL,
    categories       TEXT NOT NULL DEFAULT '',  -- comma separated category names
    verdict          TEXT NOT NULL,
    rule             TEXT,
    document         TEXT,
    clause           TEXT,
    bytes            INTEGER,
    detail           TEXT,                      -- small JSON object (not DNS since 0002)
    dns_qtype        INTEGER,                   -- 1 = A, 28 = AAAA, 65 = HTTPS, ...
    dns_rcode        INTEGER,                   -- 0 = NOERROR, 3 = NXDOMAIN, ...
    dns_answer       TEXT,                      -- allowed | blocked | safe_search | ...
    dns_cache_hit    BOOLEAN,                   -- answered from the cache
    dns_stale        BOOLEAN,                   -- expired data served (RFC 8767)
    dns_upstream_us  INTEGER                    -- time waiting on upstream
);
INSERT INTO events_0003
SELECT m.event_id, e.kind, e.at_us, e.person, e.year_group, e.client_ip, e.device, e.target,
       e.categories, e.verdict, e.rule, e.document, e.clause, e.bytes, e.detail,
       e.dns_qtype, e.dns_rcode, e.dns_answer, e.dns_cache_hit, e.dns_stale, e.dns_upstream_us
FROM events e JOIN event_ids_0003 m ON m.event_uid = e.event_uid
ORDER BY m.event_id;
DROP TABLE events;
ALTER TABLE events_0003 RENAME TO events;
-- Blocked attempts by time: per-person and per-target reports.
CREATE INDEX events_blocked_at ON events(at_us) WHERE verdict = 'block';

CREATE TABLE event_content_0003 (
    event_id  INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,
    at_us     INTEGER NOT NULL,
    content   TEXT NOT NULL
);
INSERT INTO event_content_0003
SELECT m.event_id, c.kind, c.at_us, c.content
FROM event_content c JOIN event_ids_0003 m ON m.event_uid = c.event_uid
ORDER BY m.event_id;
DROP TABLE event_content;
ALTER TABLE event_content_0003 RENAME TO event_content;
CREATE INDEX event_content_kind_at ON event_content(kind, at_us);

DROP TABLE event_ids_0003;
