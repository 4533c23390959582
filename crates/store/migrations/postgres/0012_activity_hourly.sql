-- A per-person activity roll-up (issue 20): per person, UTC hour, kind, site, verdict and
-- categories, a count. Written by the event writer in the same transaction as the events
-- it counts, so "everything this pupil did this year" is read through the primary key
-- (person first) without touching the raw decisions and visits, and outlives them: raw
-- DNS is kept 90 days by default, the roll-up a school year (`retention.activity_days`).
--
-- site: the DNS name; for web the host (without path or port); for other kinds the target.
-- Only identified events (a person) are rolled up: the roll-up exists to answer by person.
-- Existing decisions and visits are rolled up here, so a store migrated from 0011 answers
-- for its past too.

CREATE TABLE activity_hourly (
    person      TEXT NOT NULL,
    hour_us     BIGINT NOT NULL,                -- start of the UTC hour
    kind        TEXT NOT NULL,                  -- dns | web | mail | file | logon
    site        TEXT NOT NULL,
    verdict     TEXT NOT NULL,                  -- the events' verdict (allow, block, warn, ...)
    categories  TEXT NOT NULL DEFAULT '',       -- comma separated, as in decisions
    n           BIGINT NOT NULL,                -- events (visits count their queries)
    PRIMARY KEY (person, hour_us, kind, site, verdict, categories)
);
-- Retention deletes by time.
CREATE INDEX activity_hourly_hour ON activity_hourly(hour_us);

INSERT INTO activity_hourly (person, hour_us, kind, site, verdict, categories, n)
SELECT person, hour_us, kind, site, verdict, categories, SUM(n) FROM (
    SELECT person, (at_us / 3600000000) * 3600000000 AS hour_us, kind,
           CASE WHEN kind <> 'web' THEN target
                WHEN target LIKE '[%' THEN substr(target, 1, strpos(target, ']'))
                ELSE substr(target, 1, LEAST(strpos(target || '/', '/'), strpos(target || ':', ':')) - 1)
           END AS site,
           verdict, categories, 1::BIGINT AS n
    FROM decisions WHERE person IS NOT NULL AND person <> ''
    UNION ALL
    SELECT person, (minute_us / 3600000000) * 3600000000, 'dns', name, verdict, categories,
           queries::BIGINT
    FROM dns_visits WHERE person IS NOT NULL AND person <> ''
) AS rolled
GROUP BY person, hour_us, kind, site, verdict, categories;
