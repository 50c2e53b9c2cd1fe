-- R_audit: R10 and SERVICE.md §5 — who changes things, the audit trigger on every
-- configuration table, and grants beyond the defaults (recorded in grant_log in the same
-- transaction as the change).

-- Who is changing things: set per transaction by each program (set_config('vmail.actor', …,
-- true)); a plain SQL session is recorded under its database role.
CREATE OR REPLACE FUNCTION vmail.actor() RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(nullif(current_setting('vmail.actor', true), ''), 'sql:' || session_user)
$$;

-- Audit (R10 and SERVICE.md §5): every change to the configuration tables, with the actor.
-- Password hashes never enter the log; a change of one is recorded as such.
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
		-- the mailbox's address; a rule removed with its mailbox names the row
		WHEN 'sieve_rule' THEN coalesce(vmail.canonical_address((coalesce(a, b)->>'shell_account_id')::bigint,
			(coalesce(a, b)->>'mail_account_id')::bigint), 'sieve_rule #' || (coalesce(a, b)->>'id'))
		ELSE coalesce(a->>'login', a->>'address', a->>'name', b->>'login', b->>'address', b->>'name') END;
	INSERT INTO vmail.audit_log (actor, client, action, object_kind, object, before, after)
	VALUES (vmail.actor(), nullif(current_setting('vmail.client', true), ''), lower(TG_OP),
		TG_TABLE_NAME, coalesce(obj, '?'), b, a);
	RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vmail.customer FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vmail.domain FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vmail.shell_account FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vmail.mail_account FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vmail.alias FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vmail.alias_target FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER UPDATE ON vmail.settings FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON vmail.sieve_rule FOR EACH ROW EXECUTE FUNCTION vmail.audit();
CREATE OR REPLACE TRIGGER audit AFTER INSERT ON vmail.grant_log FOR EACH ROW EXECUTE FUNCTION vmail.audit();

-- what: alias_limit or disk_limit.  The change and the grant are one transaction.
CREATE OR REPLACE FUNCTION vmail.grant(p_login text, p_what text, p_value text, p_note text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	s vmail.shell_account := vmail.shell_row(p_login);
	old text;
BEGIN
	IF p_what = 'alias_limit' THEN
		old := coalesce(s.alias_limit, (SELECT alias_limit FROM vmail.settings))::text;
	ELSIF p_what = 'disk_limit' THEN
		old := s.disk_limit::text;
	ELSE
		PERFORM vmail.fail('VM400', format('unknown grant "%s" (alias_limit, disk_limit)', p_what));
	END IF;
	PERFORM vmail.shell_set(p_login, p_what, p_value);
	INSERT INTO vmail.grant_log (shell_account_id, login, what, old_value, new_value, note, granted_by)
	VALUES (s.id, s.login, p_what, old, p_value, coalesce(p_note, ''), vmail.actor());
END $$;
