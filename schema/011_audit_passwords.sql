-- 011_audit_passwords: the audit log masks password hashes the same way before and after a
-- change, so an update that leaves the hash alone is not logged as a password change, and a
-- real change reads "(set)" -> "(changed)" instead of "null -> (changed)".
CREATE OR REPLACE FUNCTION vmail.audit() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	b jsonb;
	a jsonb;
	obj text;
BEGIN
	IF TG_OP <> 'INSERT' THEN b := to_jsonb(OLD); END IF;
	IF TG_OP <> 'DELETE' THEN a := to_jsonb(NEW); END IF;
	-- Both sides are masked the same way, so an update that leaves the hash alone compares
	-- equal and a changed hash reads "(set)" -> "(changed)".
	IF b ? 'password' THEN
		b := b || jsonb_build_object('password', CASE WHEN b->>'password' IS NULL THEN NULL ELSE '(set)' END);
	END IF;
	IF a ? 'password' THEN
		a := a || jsonb_build_object('password', CASE
			WHEN a->>'password' IS NULL THEN NULL
			WHEN TG_OP = 'UPDATE' AND (to_jsonb(OLD)->>'password') IS DISTINCT FROM (to_jsonb(NEW)->>'password') THEN '(changed)'
			ELSE '(set)' END);
	END IF;
	IF TG_OP = 'UPDATE' AND a = b THEN
		RETURN NULL;
	END IF;
	obj := CASE TG_TABLE_NAME
		WHEN 'alias_target' THEN coalesce((SELECT address FROM vmail.alias WHERE id = (coalesce(a, b)->>'alias_id')::bigint),
			'alias #' || (coalesce(a, b)->>'alias_id'))
		WHEN 'settings' THEN 'settings'
		ELSE coalesce(a->>'login', a->>'address', a->>'name', b->>'login', b->>'address', b->>'name') END;
	INSERT INTO vmail.audit_log (actor, client, action, object_kind, object, before, after)
	VALUES (vmail.actor(), nullif(current_setting('vmail.client', true), ''), lower(TG_OP),
		TG_TABLE_NAME, coalesce(obj, '?'), b, a);
	RETURN NULL;
END $$;
