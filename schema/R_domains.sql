-- R_domains: the domain life cycle — "domain add", local domains registered by the ISP,
-- external domains proven by a DNS TXT record, MX delivery checks.  vmailctl does the DNS
-- lookups; these functions decide and record each step in the audit log.

-- Local (one label under a configured suffix) start awaiting registration; external ones
-- awaiting ownership proof.  Returns the new state.
CREATE OR REPLACE FUNCTION vmail.domain_add(p_customer text, p_name text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	c bigint := vmail.customer_id(p_customer);
	n text := lower(btrim(p_name));
	st text;
BEGIN
	IF NOT vmail.valid_domain_name(n) THEN
		PERFORM vmail.fail('VM400', format('invalid domain name "%s"', p_name));
	END IF;
	INSERT INTO vmail.domain (name, customer_id, kind, state) VALUES (n, c, NULL, NULL)
	RETURNING state INTO st;
	RETURN st;
END $$;

CREATE OR REPLACE FUNCTION vmail.domain_set_state(p_name text, p_state text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_row(p_name);
BEGIN
	IF p_state NOT IN ('pending_registration', 'pending_proof', 'active', 'suspended') THEN
		PERFORM vmail.fail('VM400', format('invalid domain state "%s": pending_registration, pending_proof, active or suspended', p_state));
	END IF;
	IF d.kind = 'primary' AND p_state <> 'active' THEN
		PERFORM vmail.fail('VM400', format('the primary domain %s is always active', d.name));
	END IF;
	UPDATE vmail.domain SET state = p_state WHERE id = d.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.domain_del(p_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_row(p_name);
	n int;
BEGIN
	IF d.kind = 'primary' THEN
		PERFORM vmail.fail('VM400', format('the primary domain %s cannot be deleted', d.name));
	END IF;
	SELECT count(*) INTO n FROM vmail.address WHERE domain_id = d.id;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('domain %s still has %s addresses; delete them first', d.name, n));
	END IF;
	SELECT count(*) INTO n FROM vmail.shell_account WHERE mail_domain_id = d.id;
	IF n > 0 THEN
		PERFORM vmail.fail('VM409', format('domain %s is the mail domain of %s shell accounts', d.name, n));
	END IF;
	IF EXISTS (SELECT 1 FROM vmail.domain WHERE alias_of = d.id) THEN
		PERFORM vmail.fail('VM409', format('domain %s is the target of the alias domains %s; unalias them first', d.name,
			(SELECT string_agg(name, ', ' ORDER BY name) FROM vmail.domain WHERE alias_of = d.id)));
	END IF;
	DELETE FROM vmail.domain WHERE id = d.id;
END $$;

-- Domain aliases (issue 20): every address of p_target answers at p_alias too, after
-- p_alias's own addresses (R_route.sql).  The rules are the domain_alias_before trigger's.
CREATE OR REPLACE FUNCTION vmail.domain_alias(p_alias text, p_target text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	a vmail.domain := vmail.domain_row(p_alias);
	t vmail.domain := vmail.domain_row(p_target);
BEGIN
	UPDATE vmail.domain SET alias_of = t.id WHERE id = a.id;
END $$;

CREATE OR REPLACE FUNCTION vmail.domain_unalias(p_alias text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	a vmail.domain := vmail.domain_row(p_alias);
BEGIN
	IF a.alias_of IS NULL THEN
		PERFORM vmail.fail('VM404', format('domain %s is not an alias domain', a.name));
	END IF;
	UPDATE vmail.domain SET alias_of = NULL WHERE id = a.id;
END $$;

-- Where the customer publishes the ownership token: a name of its own under the domain, so
-- the record never crowds the apex's TXT records (SPF, other providers' tokens).
CREATE OR REPLACE FUNCTION vmail.domain_proof_name(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT '_vmail-verify.' || lower(p_name)
$$;

-- The exact zone-file line to publish, or NULL for domains that need no proof.
CREATE OR REPLACE FUNCTION vmail.domain_proof_record(p_name text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT vmail.domain_proof_name(d.name) || '. IN TXT "' || d.verify_token || '"'
	FROM vmail.domain d
	WHERE d.name = lower(btrim(p_name)) AND d.kind = 'external' AND d.verify_token IS NOT NULL
$$;

-- One step of the life cycle that changes no row by itself (a verify attempt, a check), in
-- the audit log beside the row changes the audit trigger records.
CREATE OR REPLACE FUNCTION vmail.domain_event(d vmail.domain, p_action text, p_after jsonb) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO vmail.audit_log (actor, client, action, object_kind, object, before, after)
	VALUES (vmail.actor(), nullif(current_setting('vmail.client', true), ''), p_action, 'domain', d.name,
	        jsonb_build_object('state', d.state), p_after)
$$;

-- The row, locked, so two administrators (or a cron job and one) take turns.
CREATE OR REPLACE FUNCTION vmail.domain_lock(p_name text) RETURNS vmail.domain
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_row(btrim(p_name));
BEGIN
	SELECT * INTO d FROM vmail.domain WHERE id = d.id FOR UPDATE;
	RETURN d;
END $$;

-- The ISP has registered a local domain: it becomes active.
CREATE OR REPLACE FUNCTION vmail.domain_registered(p_name text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_lock(p_name);
BEGIN
	IF d.kind <> 'local' THEN
		PERFORM vmail.fail('VM400', format('domain %s is %s, not local: %s', d.name, d.kind,
			CASE d.kind WHEN 'external' THEN 'its owner proves it with a DNS record (vmailctl domain verify)'
			ELSE 'it needs no registration' END));
	END IF;
	IF d.state <> 'pending_registration' THEN
		PERFORM vmail.fail('VM409', format('domain %s %s, not awaiting registration', d.name,
			vmail.domain_state_text(d.state)));
	END IF;
	PERFORM vmail.domain_event(d, 'register', jsonb_build_object('state', 'active'));
	UPDATE vmail.domain SET state = 'active' WHERE id = d.id;
END $$;

-- What vmailctl found at the proof name: 'match' (the token is there), 'mismatch' (TXT records,
-- none the token), 'missing' (no TXT record, or no such name) or 'tempfail' (DNS gave no
-- answer).  A match activates a domain awaiting proof; nothing else changes the state (a
-- suspended domain stays suspended, an active one stays active).  Returns the state after.
CREATE OR REPLACE FUNCTION vmail.domain_verify_result(p_name text, p_outcome text, p_found text[], p_error text)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_lock(p_name);
	st text;
BEGIN
	IF d.kind <> 'external' THEN
		PERFORM vmail.fail('VM400', format('domain %s is %s: %s', d.name, d.kind,
			CASE d.kind WHEN 'local' THEN 'the ISP registers it, then: vmailctl domain registered ' || d.name
			ELSE 'it needs no proof' END));
	END IF;
	IF p_outcome IS NULL OR p_outcome NOT IN ('match', 'mismatch', 'missing', 'tempfail') THEN
		PERFORM vmail.fail('VM400', format('invalid verify outcome "%s"', p_outcome));
	END IF;
	-- the caller compares; this only refuses a "match" that cannot be one
	IF p_outcome = 'match' AND NOT EXISTS (SELECT 1 FROM unnest(p_found) f WHERE strpos(f, d.verify_token) > 0) THEN
		PERFORM vmail.fail('VM400', format('domain %s: none of the records found holds its token', d.name));
	END IF;
	st := CASE WHEN p_outcome = 'match' AND d.state = 'pending_proof' THEN 'active' ELSE d.state END;
	PERFORM vmail.domain_event(d, 'verify', jsonb_build_object(
		'outcome', p_outcome, 'record', vmail.domain_proof_name(d.name), 'found', coalesce(p_found, '{}'),
		'error', p_error, 'state', st));
	IF st <> d.state THEN
		UPDATE vmail.domain SET state = st WHERE id = d.id;
	END IF;
	RETURN st;
END $$;

-- A delivery check: the domain's MX hosts, and whether every one is one of settings.mail_hosts.
-- Only recorded: a domain whose MX points elsewhere is the customer's choice (warned, not refused).
CREATE OR REPLACE FUNCTION vmail.domain_check_result(p_name text, p_mx text[], p_ok boolean, p_error text)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_row(btrim(p_name));
BEGIN
	PERFORM vmail.domain_event(d, 'check', jsonb_build_object(
		'mx', coalesce(p_mx, '{}'), 'ours', p_ok, 'mail_hosts', (SELECT mail_hosts FROM vmail.settings),
		'error', p_error));
END $$;

-- The administrator's work queue: local domains to register, external domains awaiting proof,
-- each with what to do next and the last verify attempt.
CREATE OR REPLACE FUNCTION vmail.domain_pending()
RETURNS TABLE (name text, customer text, kind text, state text, since text, todo text, last_attempt text)
LANGUAGE sql STABLE AS $$
	SELECT d.name, c.name, d.kind, d.state, to_char(d.created_at, 'YYYY-MM-DD HH24:MI'),
	       CASE d.kind
	       WHEN 'local' THEN 'register it with the registry, then: vmailctl domain registered ' || d.name
	       ELSE 'customer publishes ' || vmail.domain_proof_record(d.name) || ', then: vmailctl domain verify ' || d.name
	       END,
	       (SELECT to_char(l.at, 'YYYY-MM-DD HH24:MI') || ' ' || (l.after->>'outcome')
	               || CASE WHEN jsonb_array_length(l.after->'found') > 0
	                       THEN ' (found: ' || array_to_string(ARRAY(SELECT jsonb_array_elements_text(l.after->'found')), ', ') || ')'
	                       WHEN l.after->>'error' IS NOT NULL THEN ' (' || (l.after->>'error') || ')'
	                       ELSE '' END
	        FROM vmail.audit_log l
	        WHERE l.object_kind = 'domain' AND l.object = d.name AND l.action = 'verify' AND l.at >= d.created_at
	        ORDER BY l.id DESC LIMIT 1)
	FROM vmail.domain d JOIN vmail.customer c ON c.id = d.customer_id
	WHERE d.state IN ('pending_registration', 'pending_proof')
	ORDER BY d.created_at, d.name
$$;
