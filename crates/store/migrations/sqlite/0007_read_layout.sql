-- The store laid out for its reads (issue 14): one pupil's activity by person and time, a
-- person's export and erasure, retention as a plain delete by time, reports on allowed and
-- blocked traffic. Replaces the packed segments of 0004 and the per-minute id claims.
--
-- * decisions: every block, every warn and every non-DNS event, one row each with its rule
--   and clause (the evidence). The id is the database's (the rowid); event_content keys
--   on it.
-- * dns_visits: allowed DNS queries, aggregated by the event writer per client, person,
--   name, minute, verdict and categories, with a count. No unique key: two batches may
--   each write a row for the same key, and reads SUM.
-- * traffic_daily: the roll-up behind the reports (allowed and blocked), per person, so
--   groups can join and erasure removes it with the person. Replaces blocked_daily.
-- * committed_batches: the ids of the batches committed (also written in the spill file),
--   recorded in the same transaction, so a replay skips a batch already stored.
-- * holds: a legal or safeguarding hold keeps a person's data past retention.
--
-- Existing data: event_rows become decisions with their ids (so content still matches);
-- packed blocked and warned queries become decisions with their ids; packed allowed
-- queries become visits; blocked_daily becomes traffic_daily rows with person '' and
-- verdict 'block', and the allowed and warned events still stored are rolled up per
-- person. Runs in one transaction; on a large store it copies every event once.

CREATE TABLE decisions (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,             -- dns | web | mail | file | logon
    at_us            INTEGER NOT NULL,
    person           TEXT,                      -- username, NULL when unidentified
    year_group       TEXT,
    client_ip        TEXT,
    device           TEXT,
    target           TEXT NOT NULL,
    categories       TEXT NOT NULL DEFAULT '',  -- comma separated category names
    verdict          TEXT NOT NULL,
    rule             TEXT,
    document         TEXT,
    clause           TEXT,
    bytes            INTEGER,
    detail           TEXT,                      -- small JSON object (non-DNS)
    dns_qtype        INTEGER,
    dns_rcode        INTEGER,
    dns_answer       TEXT,
    dns_cache_hit    BOOLEAN,
    dns_stale        BOOLEAN,
    dns_upstream_us  INTEGER
);

CREATE TABLE dns_visits (
    id          INTEGER PRIMARY KEY,
    minute_us   INTEGER NOT NULL,               -- start of the UTC minute
    first_us    INTEGER NOT NULL,               -- first query inside the minute
    last_us     INTEGER NOT NULL,               -- last query inside the minute
    person      TEXT,
    year_group  TEXT,
    client_ip   TEXT NOT NULL,
    device      TEXT,
    name        TEXT NOT NULL,
    categories  TEXT NOT NULL DEFAULT '',
    verdict     TEXT NOT NULL,                  -- allow | safe_search (never block or warn)
    rule        TEXT,                           -- what allowed it (NULL = the default)
    document    TEXT,
    clause      TEXT,
    queries     INTEGER NOT NULL,
    cache_hits  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE traffic_daily (
    day         INTEGER NOT NULL,               -- days since 1970-01-01 (UTC)
    person      TEXT NOT NULL,                  -- '' when unidentified
    year_group  TEXT NOT NULL,                  -- '' when unknown
    kind        TEXT NOT NULL,
    category    TEXT NOT NULL,                  -- '': each event once, whatever its categories
    verdict     TEXT NOT NULL,                  -- block | warn | allow (safe_search is allow)
    n           INTEGER NOT NULL,
    PRIMARY KEY (day, person, year_group, kind, category, verdict)
) WITHOUT ROWID;

CREATE TABLE committed_batches (
    batch_id      TEXT PRIMARY KEY,             -- "<writer run id>:<sequence>"
    committed_us  INTEGER NOT NULL,
    events        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE holds (
    id           INTEGER PRIMARY KEY,
    person       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    placed_by    TEXT NOT NULL,
    placed_us    INTEGER NOT NULL,
    released_us  INTEGER                        -- NULL = in force
);
CREATE INDEX holds_person ON holds(person) WHERE released_us IS NULL;

INSERT INTO decisions (id, kind, at_us, person, year_group, client_ip, device, target,
                       categories, verdict, rule, document, clause, bytes, detail, dns_qtype,
                       dns_rcode, dns_answer, dns_cache_hit, dns_stale, dns_upstream_us)
SELECT event_id, kind, at_us, person, year_group, client_ip, device, target,
       categories, verdict, rule, document, clause, bytes, detail, dns_qtype,
       dns_rcode, dns_answer, dns_cache_hit, dns_stale, dns_upstream_us
FROM event_rows
UNION ALL
SELECT event_id, kind, at_us, person, year_group, client_ip, device, target,
       COALESCE(categories, ''), verdict, rule, document, clause, bytes, detail, dns_qtype,
       dns_rcode, dns_answer, dns_cache_hit, dns_stale, dns_upstream_us
FROM packed_events
WHERE blocked = 1 OR verdict IN ('block', 'warn')
ORDER BY 1;

INSERT INTO dns_visits (minute_us, first_us, last_us, person, year_group, client_ip, device,
                        name, categories, verdict, rule, document, clause, queries, cache_hits)
SELECT (at_us / 60000000) * 60000000, MIN(at_us), MAX(at_us), person, year_group,
       COALESCE(client_ip, ''), device, target, COALESCE(categories, ''), verdict, rule,
       document, clause, COUNT(*), SUM(CASE WHEN dns_cache_hit THEN 1 ELSE 0 END)
FROM packed_events
WHERE NOT (blocked = 1 OR verdict IN ('block', 'warn'))
GROUP BY at_us / 60000000, person, year_group, COALESCE(client_ip, ''), device, target,
         COALESCE(categories, ''), verdict, rule, document, clause
ORDER BY MIN(at_us);

INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n)
SELECT day, '', year_group, kind, category, 'block', n FROM blocked_daily;

-- The allowed and warned events still stored, per person, day, kind and category.
CREATE TABLE traffic_0007 AS
SELECT at_us / 86400000000 AS day, COALESCE(person, '') AS person,
       COALESCE(year_group, '') AS year_group, kind, categories,
       CASE WHEN verdict = 'warn' THEN 'warn' ELSE 'allow' END AS verdict, COUNT(*) AS n
FROM decisions WHERE verdict <> 'block'
GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT minute_us / 86400000000, COALESCE(person, ''), COALESCE(year_group, ''), 'dns',
       categories, 'allow', SUM(queries)
FROM dns_visits
GROUP BY 1, 2, 3, 4, 5, 6;

WITH RECURSIVE split(day, person, year_group, kind, verdict, n, total, category, rest) AS (
    SELECT day, person, year_group, kind, verdict, n, 1, '', categories || ','
    FROM traffic_0007
    UNION ALL
    SELECT day, person, year_group, kind, verdict, n, 0,
           substr(rest, 1, instr(rest, ',') - 1), substr(rest, instr(rest, ',') + 1)
    FROM split WHERE rest <> ''
)
INSERT INTO traffic_daily (day, person, year_group, kind, category, verdict, n)
SELECT day, person, year_group, kind, category, verdict, SUM(n)
FROM split WHERE total = 1 OR category <> ''
GROUP BY day, person, year_group, kind, category, verdict;

DROP TABLE traffic_0007;
DROP VIEW events;
DROP VIEW packed_events;
DROP TABLE event_rows;
DROP TABLE event_segments;
DROP TABLE event_id_claims;
DROP TABLE blocked_daily;

CREATE INDEX decisions_person_at ON decisions(person, at_us) WHERE person IS NOT NULL;
CREATE INDEX decisions_at ON decisions(at_us);
CREATE INDEX dns_visits_person_minute ON dns_visits(person, minute_us) WHERE person IS NOT NULL;
CREATE INDEX dns_visits_minute ON dns_visits(minute_us);
-- The month report per category reads only this index (no sort, no table lookups); one
-- person's rows (export, erasure, per-group reports) are found without a scan; replay
-- records are deleted by time.
CREATE INDEX traffic_daily_day_category ON traffic_daily(day, category, verdict, kind, year_group, n);
CREATE INDEX traffic_daily_person ON traffic_daily(person, day) WHERE person <> '';
CREATE INDEX committed_batches_at ON committed_batches(committed_us);

-- Every stored event and visit, for plain SQL (a visit shows its first query's time and
-- how many queries it counts).
CREATE VIEW events AS
SELECT 'decision' AS source, id AS event_id, kind, at_us, person, year_group, client_ip,
       device, target, categories, verdict, rule, document, clause, bytes, detail, dns_qtype,
       dns_rcode, dns_answer, dns_cache_hit, dns_stale, dns_upstream_us, 1 AS queries
FROM decisions
UNION ALL
SELECT 'visit', id, 'dns', first_us, person, year_group, client_ip, device, name, categories,
       verdict, rule, document, clause, NULL, NULL, NULL, NULL, 'allowed', NULL, NULL, NULL,
       queries
FROM dns_visits;
