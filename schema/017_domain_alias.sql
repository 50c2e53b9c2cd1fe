-- 017: domain aliases (issue 20).  A domain whose alias_of names another domain of the same
-- customer answers every address of that target too (R_route.sql, rules in R_rules.sql).
-- The routing relation's domain rows carry the target's name and state, so that a lookup
-- finds the mirrored candidates in the same probe over the candidate keys.
ALTER TABLE vmail.domain ADD COLUMN alias_of bigint REFERENCES vmail.domain ON DELETE RESTRICT;
CREATE INDEX domain_alias_of ON vmail.domain (alias_of) WHERE alias_of IS NOT NULL;
ALTER TABLE vmail.route ADD COLUMN target text, ADD COLUMN target_state text;
