-- 007_domains: the domain life cycle after "domain add" — local domains registered by the ISP,
-- external domains proven by a DNS TXT record, MX delivery checks — and the mail hosts setting.
-- vmailctl does the DNS lookups; these functions decide and record each step in the audit log.

-- The hosts customers' MX records must point at (`vmailctl domain check`, the panel's advice).
CREATE FUNCTION vmail.valid_host_list(hosts text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT hosts IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM unnest(hosts) h WHERE NOT vmail.valid_domain_name(h))
$$;

ALTER TABLE vmail.settings
	ADD COLUMN mail_hosts text[] NOT NULL DEFAULT '{}' CHECK (vmail.valid_host_list(mail_hosts));

-- 004's setting_set, plus mail_hosts (a list like local_suffixes; trailing dots dropped).
CREATE OR REPLACE FUNCTION vmail.setting_set(p_key text, p_value text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	hosts text[];
	bad text;
BEGIN
	CASE p_key
	WHEN 'alias_limit', 'free_account_limit', 'free_per_domain_limit', 'vmail_uid', 'vmail_gid' THEN
		IF p_value !~ '^[0-9]{1,9}$' THEN
			PERFORM vmail.fail('VM400', format('%s must be a whole number, not "%s"', p_key, p_value));
		END IF;
		EXECUTE format('UPDATE vmail.settings SET %I = $1::integer', p_key) USING p_value;
	WHEN 'subaddress_delimiter', 'primary_domain', 'shell_mail_location', 'free_home_template',
	     'free_mail_location', 'paid_home_template', 'paid_mail_location' THEN
		EXECUTE format('UPDATE vmail.settings SET %I = $1', p_key) USING lower(p_value);
	WHEN 'postmaster_address' THEN
		IF coalesce(p_value, '') = '' THEN
			UPDATE vmail.settings SET postmaster_address = NULL;
		ELSE
			PERFORM vmail.split_address(p_value);
			UPDATE vmail.settings SET postmaster_address = lower(p_value);
		END IF;
	WHEN 'local_suffixes' THEN
		UPDATE vmail.settings SET local_suffixes = regexp_split_to_array(lower(btrim(p_value)), '[,[:space:]]+');
	WHEN 'mail_hosts' THEN
		hosts := ARRAY(SELECT rtrim(h, '.') FROM unnest(regexp_split_to_array(lower(btrim(coalesce(p_value, ''))),
		                                                                      '[,[:space:]]+')) h
		               WHERE h <> '');
		SELECT h INTO bad FROM unnest(hosts) h WHERE NOT vmail.valid_domain_name(h) LIMIT 1;
		IF bad IS NOT NULL THEN
			PERFORM vmail.fail('VM400', format('mail_hosts: "%s" is not a host name', bad));
		END IF;
		UPDATE vmail.settings SET mail_hosts = hosts;
	ELSE
		PERFORM vmail.fail('VM400', format('unknown setting "%s"', p_key));
	END CASE;
END $$;

-- Where the customer publishes the ownership token: a name of its own under the domain, so
-- the record never crowds the apex's TXT records (SPF, other providers' tokens).
CREATE FUNCTION vmail.domain_proof_name(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT '_vmail-verify.' || lower(p_name)
$$;

-- The exact zone-file line to publish, or NULL for domains that need no proof.
CREATE FUNCTION vmail.domain_proof_record(p_name text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT vmail.domain_proof_name(d.name) || '. IN TXT "' || d.verify_token || '"'
	FROM vmail.domain d
	WHERE d.name = lower(btrim(p_name)) AND d.kind = 'external' AND d.verify_token IS NOT NULL
$$;

-- One step of the life cycle that changes no row by itself (a verify attempt, a check), in
-- the audit log beside the row changes the audit trigger records.
CREATE FUNCTION vmail.domain_event(d vmail.domain, p_action text, p_after jsonb) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO vmail.audit_log (actor, client, action, object_kind, object, before, after)
	VALUES (vmail.actor(), nullif(current_setting('vmail.client', true), ''), p_action, 'domain', d.name,
	        jsonb_build_object('state', d.state), p_after)
$$;

-- The row, locked, so two administrators (or a cron job and one) take turns.
CREATE FUNCTION vmail.domain_lock(p_name text) RETURNS vmail.domain
LANGUAGE plpgsql AS $$
DECLARE
	d vmail.domain := vmail.domain_row(btrim(p_name));
BEGIN
	SELECT * INTO d FROM vmail.domain WHERE id = d.id FOR UPDATE;
	RETURN d;
END $$;

-- The ISP has registered a local domain: it becomes active.
CREATE FUNCTION vmail.domain_registered(p_name text) RETURNS void
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
CREATE FUNCTION vmail.domain_verify_result(p_name text, p_outcome text, p_found text[], p_error text)
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
CREATE FUNCTION vmail.domain_check_result(p_name text, p_mx text[], p_ok boolean, p_error text)
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
CREATE FUNCTION vmail.domain_pending()
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

-- The panel shows customers the record to publish; the token is public once published anyway.
GRANT EXECUTE ON FUNCTION vmail.domain_proof_name(text), vmail.domain_proof_record(text) TO vmail_panel;
