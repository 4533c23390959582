-- DNS queries, most of what a school records, are stored packed: one `event_segments`
-- row holds up to 256 of them, written together by the event writer, as a JSON array of
-- arrays. A row per query cost the writer more CPU than the DNS benchmark's floors leave
-- for recording (see segment.rs). Blocked and allowed queries go in separate segments;
-- blocked segments have their own index, for the reports. Events with content, replayed
-- events and every other kind stay one row each, in the table `events` is renamed to:
-- `event_rows`. `events` becomes a view of both, so a query over `events` still sees every
-- event with its own id, time and fields.
--
-- A packed event is an array of these fields, by position (trailing nulls left out;
-- booleans are 0 or 1; the first two are offsets, to keep the text short):
--    0  event_id - first_id
--    1  at_us - (event_id >> 21) * 1000
--    2  dns_qtype
--    3  dns_rcode
--    4  dns_cache_hit
--    5  dns_stale
--    6  dns_upstream_us
--    7  client_ip
--    8  target
--    9  verdict
--   10  dns_answer
--   11  categories
--   12  person
--   13  year_group
--   14  device
--   15  rule
--   16  document
--   17  clause
--   18  bytes
--   19  detail
--
-- A segment's events span at most a second (first_id to last_id), so the segments that
-- may hold an id are a bounded range of the key.

ALTER TABLE events RENAME TO event_rows;
ALTER INDEX events_pkey RENAME TO event_rows_pkey;

CREATE TABLE event_segments (
    first_id  BIGINT PRIMARY KEY,     -- the first (smallest) event id in the segment
    last_id   BIGINT NOT NULL,        -- the last (largest)
    kind      TEXT NOT NULL,          -- the events' kind (dns)
    blocked   INTEGER NOT NULL,       -- 1: every event in it is blocked; 0: none is
    n         BIGINT NOT NULL,        -- how many events
    events    TEXT NOT NULL           -- JSON: [[id offset, time offset, qtype, ...], ...]
);
-- Blocked attempts by time (reports), one entry per segment.
CREATE INDEX event_segments_blocked ON event_segments(first_id) WHERE blocked = 1;

-- Which writer makes ids in which slot, per minute. Packed events share a row, so the
-- primary key cannot catch two writers that drew the same slot, as it does for rows: a
-- writer claims (minute, slot) before it stores packed events with ids from it, and a
-- claim another writer holds fails the batch like a clash of row ids (see segment.rs).
CREATE TABLE event_id_claims (
    minute  BIGINT NOT NULL,     -- the ids' millisecond / 60000
    slot    INTEGER NOT NULL,
    writer  BIGINT NOT NULL,     -- random, per writer run
    PRIMARY KEY (minute, slot)
);

-- The packed events unpacked, with their segment's key range (to look one up by id:
-- `WHERE first_id BETWEEN ... AND event_id = ...`).
CREATE VIEW packed_events AS
SELECT s.first_id AS first_id,
       s.last_id AS last_id,
       s.blocked AS blocked,
       s.first_id + (e.value ->> 0)::bigint AS event_id,
       s.kind AS kind,
       ((s.first_id + (e.value ->> 0)::bigint) >> 21) * 1000 + (e.value ->> 1)::bigint AS at_us,
       e.value ->> 12 AS person,
       e.value ->> 13 AS year_group,
       e.value ->> 7 AS client_ip,
       e.value ->> 14 AS device,
       e.value ->> 8 AS target,
       e.value ->> 11 AS categories,
       e.value ->> 9 AS verdict,
       e.value ->> 15 AS rule,
       e.value ->> 16 AS document,
       e.value ->> 17 AS clause,
       (e.value ->> 18)::bigint AS bytes,
       e.value ->> 19 AS detail,
       (e.value ->> 2)::integer AS dns_qtype,
       (e.value ->> 3)::integer AS dns_rcode,
       e.value ->> 10 AS dns_answer,
       (e.value ->> 4)::boolean AS dns_cache_hit,
       (e.value ->> 5)::boolean AS dns_stale,
       (e.value ->> 6)::integer AS dns_upstream_us
FROM event_segments s CROSS JOIN LATERAL jsonb_array_elements(s.events::jsonb) AS e(value);

CREATE VIEW events AS
SELECT event_id, kind, at_us, person, year_group, client_ip, device, target, categories, verdict, rule, document, clause, bytes, detail, dns_qtype, dns_rcode, dns_answer, dns_cache_hit, dns_stale, dns_upstream_us
FROM event_rows
UNION ALL
SELECT event_id, kind, at_us, person, year_group, client_ip, device, target, categories, verdict, rule, document, clause, bytes, detail, dns_qtype, dns_rcode, dns_answer, dns_cache_hit, dns_stale, dns_upstream_us
FROM packed_events;
