-- R_client_setup: what a customer's mail program needs (issue 22), from the settings of
-- 018_client_setup.sql: the servers for an address (the panel's page, Thunderbird autoconfig,
-- Outlook autodiscover, Apple profiles) and the DNS records each domain should publish.
-- Answers never depend on whether the address exists (no account probing through the
-- automatic configuration): only on its domain being hosted here and active.

-- The six endpoints in advertising order: implicit TLS before STARTTLS (RFC 8314 §5).
CREATE OR REPLACE FUNCTION vmail.client_endpoints()
RETURNS TABLE (ord integer, service text, protocol text, host text, port integer, security text,
	offered boolean)
LANGUAGE sql STABLE AS $$
	SELECT e.ord, e.service, e.protocol, coalesce(e.host, s.primary_domain), e.port, e.security,
		e.service = ANY (s.client_services)
	  FROM vmail.settings s CROSS JOIN LATERAL (VALUES
		(1, 'imaps', 'imap', s.imap_host, s.imaps_port, 'ssl'),
		(2, 'imap', 'imap', s.imap_host, s.imap_port, 'starttls'),
		(3, 'pop3s', 'pop3', s.pop3_host, s.pop3s_port, 'ssl'),
		(4, 'pop3', 'pop3', s.pop3_host, s.pop3_port, 'starttls'),
		(5, 'submissions', 'smtp', s.submission_host, s.submissions_port, 'ssl'),
		(6, 'submission', 'smtp', s.submission_host, s.submission_port, 'starttls'))
		e(ord, service, protocol, host, port, security)
	 ORDER BY e.ord
$$;

-- The servers for an address, as every automatic answer gives them: the address as asked
-- (trimmed, lower-cased) is the user name (Dovecot takes jan@<primary> for the shell account
-- jan).  VM400 for what is no address; VM404 when its domain is not hosted here or not
-- active.  The same answer for an address that exists and one that does not.
CREATE OR REPLACE FUNCTION vmail.client_setup(p_address text)
RETURNS TABLE (service text, protocol text, host text, port integer, security text,
	username text, domain text, service_name text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	a text := lower(btrim(coalesce(p_address, '')));
	d text := split_part(a, '@', 2);
BEGIN
	IF length(a) > 254 OR a !~ '^[^@[:space:][:cntrl:]]+@[^@]+$'
	   OR NOT vmail.valid_local_part(split_part(a, '@', 1)) OR NOT vmail.valid_domain_name(d) THEN
		PERFORM vmail.fail('VM400', format('not an e-mail address: "%s"', left(btrim(coalesce(p_address, '')), 100)));
	END IF;
	IF NOT EXISTS (SELECT 1 FROM vmail.domain x WHERE x.name = d AND x.state = 'active') THEN
		PERFORM vmail.fail('VM404', format('domain %s is not served here', d));
	END IF;
	RETURN QUERY SELECT e.service, e.protocol, e.host, e.port, e.security, a, d, s.service_name
	  FROM vmail.client_endpoints() e CROSS JOIN vmail.settings s WHERE e.offered ORDER BY e.ord;
END $$;

-- The records a hosted domain should publish so that mail programs find the servers: RFC
-- 6186 SRV per service (POP3's only while POP3 is offered; a service not offered gets the
-- target "." that says so), the autodiscover SRV and the autoconfig CNAME to the web host.
-- value is the record's data as a zone file writes it.
CREATE OR REPLACE FUNCTION vmail.client_dns_records(p_domain text)
RETURNS TABLE (name text, type text, value text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = vmail, pg_temp AS $$
DECLARE
	d text := rtrim(lower(btrim(coalesce(p_domain, ''))), '.');
	web text := (SELECT coalesce(s.web_host, s.primary_domain) FROM vmail.settings s);
	pop3 boolean := (SELECT s.client_services && '{pop3s,pop3}' FROM vmail.settings s);
BEGIN
	IF NOT EXISTS (SELECT 1 FROM vmail.domain x WHERE x.name = d) THEN
		PERFORM vmail.fail('VM404', format('unknown domain "%s"', left(d, 100)));
	END IF;
	RETURN QUERY SELECT r.name, r.type, r.value FROM (
		SELECT e.ord, '_' || e.service || '._tcp.' || d AS name, 'SRV'::text AS type,
			CASE WHEN e.offered THEN format('0 1 %s %s.', e.port, e.host) ELSE '0 0 0 .' END AS value
		  FROM vmail.client_endpoints() e WHERE e.protocol <> 'pop3' OR pop3
		UNION ALL
		SELECT 7, '_autodiscover._tcp.' || d, 'SRV', format('0 1 443 %s.', web)
		UNION ALL
		SELECT 8, 'autoconfig.' || d, 'CNAME', web || '.') r
	 ORDER BY r.ord;
END $$;
