-- R_valid: the input shapes that CHECK constraints of the tables use (and the functions that
-- report bad input).  vmailctl applies this file before the versioned migrations, because a
-- migration's CREATE TABLE needs them; it also creates the vmail schema for the first one.
-- A change here does not recheck existing rows: a tighter shape needs a versioned migration
-- that fixes or refuses the rows first.

CREATE SCHEMA IF NOT EXISTS vmail;

-- Input shapes, shared by CHECK constraints and by the functions that report bad input.
CREATE OR REPLACE FUNCTION vmail.valid_domain_name(n text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT n IS NOT NULL AND length(n) <= 253
	   AND n ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
	   AND n ~ '[a-z]'
$$;

CREATE OR REPLACE FUNCTION vmail.valid_local_part(l text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT l IS NOT NULL AND length(l) BETWEEN 1 AND 64
	   AND l ~ '^[a-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&''*+/=?^_`{|}~-]+)*$'
$$;

CREATE OR REPLACE FUNCTION vmail.valid_login(l text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT l IS NOT NULL AND l ~ '^[a-z_][a-z0-9_-]{0,31}$'
$$;

-- The hosts customers' MX records must point at (`vmailctl domain check`, the panel's advice).
CREATE OR REPLACE FUNCTION vmail.valid_host_list(hosts text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT hosts IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM unnest(hosts) h WHERE NOT vmail.valid_domain_name(h))
$$;

-- A stored path as the file system reads it: repeated slashes are one, a trailing one is
-- dropped ("/" stays "/").  Homes made by old templates or from a shell home ending in "/"
-- are compared (and purged) in this form.
-- One expression without FROM, so that the planner inlines it and matches the home indexes of
-- R_rules.sql (a FROM made it a function call per row: 5 650 calls for each new mailbox at
-- 10 000).  PostgreSQL does not rebuild an index when its function changes: a change here
-- must come with one to R_rules.sql, which rebuilds them.
CREATE OR REPLACE FUNCTION vmail.path_norm(p text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT CASE WHEN regexp_replace(p, '/{2,}', '/', 'g') = '/' THEN '/'
		ELSE rtrim(regexp_replace(p, '/{2,}', '/', 'g'), '/') END
$$;

-- The proper ancestors of a normalised absolute path: '/a/b/c' -> {/a, /a/b}.
CREATE OR REPLACE FUNCTION vmail.path_ancestors(p text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(array_agg(left(p, i - 1) ORDER BY i), '{}')
	  FROM generate_series(2, length(p)) i WHERE substr(p, i, 1) = '/'
$$;

