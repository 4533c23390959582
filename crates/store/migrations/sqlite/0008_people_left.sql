-- People who have left: synced from a directory (`hallpass directory sync`) and no longer
-- in it. Never deleted, so their history stays; a person who returns is re-enabled.
-- `source` says which sync manages the person (`ldap`; NULL for a CSV import), so only
-- the directory's own people are disabled when they leave it.
ALTER TABLE people ADD COLUMN left_us INTEGER;
ALTER TABLE people ADD COLUMN source TEXT;
