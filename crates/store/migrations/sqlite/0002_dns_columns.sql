-- DNS query events carry how they were answered in typed columns rather than as JSON in
-- `detail`: DNS is most of what a school records, and a DNS row with these columns is
-- about a third smaller (and cheaper to write) than the same facts as JSON text. NULL for
-- every other kind of event. DNS rows written before this migration keep their JSON.
ALTER TABLE events ADD COLUMN dns_qtype       INTEGER;      -- 1 = A, 28 = AAAA, 65 = HTTPS, ...
ALTER TABLE events ADD COLUMN dns_rcode       INTEGER;      -- 0 = NOERROR, 3 = NXDOMAIN, ...
ALTER TABLE events ADD COLUMN dns_answer      TEXT;         -- allowed | blocked | safe_search | ...
ALTER TABLE events ADD COLUMN dns_cache_hit   BOOLEAN;      -- answered from the cache
ALTER TABLE events ADD COLUMN dns_stale       BOOLEAN;      -- expired data served (RFC 8767)
ALTER TABLE events ADD COLUMN dns_upstream_us INTEGER;      -- time waiting on upstream
