-- grants: the database roles and every privilege, in one place.  vmailctl applies this file
-- last, after any definition file it (re)applied, so a function re-created by a DROP gets its
-- grants back.  Every statement here can run again.
--
-- vmail_lookup: what vmaild and Dovecot's sql driver need.  vmail_panel:
-- the self-service functions only, so a subverted panel cannot act as the administrator.
-- Roles are cluster-wide; create them only once.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vmail_lookup') THEN
		CREATE ROLE vmail_lookup NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vmail_panel') THEN
		CREATE ROLE vmail_panel NOLOGIN;
	END IF;
END $$;

REVOKE ALL ON SCHEMA vmail FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA vmail FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA vmail REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
GRANT USAGE ON SCHEMA vmail TO vmail_lookup, vmail_panel;
GRANT SELECT ON ALL TABLES IN SCHEMA vmail TO vmail_lookup;
-- Sessions and their secret are for the self-service functions alone (012_self_sessions.sql).
REVOKE ALL ON vmail.self_secret, vmail.self_session FROM vmail_lookup, vmail_panel;
GRANT UPDATE, INSERT, DELETE ON vmail.mailbox_usage TO vmail_lookup;
-- vmaild lists the mailboxes a failed quota request may have left miscounted (014), through
-- usage_recount_add (SECURITY DEFINER) only: no row of its own to read, change or remove.
REVOKE ALL ON vmail.usage_recount FROM vmail_lookup, vmail_panel;
GRANT EXECUTE ON FUNCTION vmail.usage_recount_add(text[], text[], integer[]) TO vmail_lookup;
GRANT EXECUTE ON FUNCTION
	vmail.lookup_domain(text), vmail.lookup_alias(text), vmail.lookup_mailbox(text), vmail.lookup_sender(text),
	vmail.passdb(text), vmail.passdb_json(text), vmail.passdb_dict(text), vmail.userdb_dict(text), vmail.userdb(text), vmail.userdb_effective(text),
	vmail.userdb_v24(text),
	vmail.userdb_json(text), vmail.userdb_list(), vmail.quota_get(text, text, text),
	vmail.quota_apply(text, bigint, bigint), vmail.quota_set(text, bigint, bigint), vmail.quota_unset(text),
	vmail.quota_state(text), vmail.policy_check(text, bigint),
	vmail.dict_quota_get(text, text, text, integer), vmail.dict_sieve_get(text, text, integer),
	vmail.dict_commit(text[], text[], bigint[], text[], bigint[], integer[])
	TO vmail_lookup;
-- The lookup functions call these helpers with the caller's rights.
GRANT EXECUTE ON FUNCTION
	vmail.mailbox_of(text), vmail.with_ext(text, text),
	vmail.canonical_address(bigint, bigint), vmail.canonical_login(bigint, bigint),
	vmail.entry_destinations(vmail.address, text), vmail.address_mailboxes(text, boolean),
	vmail.mailbox_facts(text), vmail.account_usage(bigint, bigint), vmail.usage_total(bigint, bigint), vmail.mailbox_usage_of(bigint, bigint),
	vmail.mailbox_effective(text), vmail.mail_location_v24(text, text), vmail.dovecot_login_refused(text), vmail.usage_of_others(bigint, bigint, bigint),
	vmail.dict_peer_may(text, integer), vmail.mail_uid(text),
	-- the Sieve script a dict lookup makes (R_sieve.sql)
	vmail.sieve_script(text), vmail.sieve_script_of(vmail.sieve_rule), vmail.sieve_id(text),
	vmail.sieve_quote(text), vmail.sieve_text(text), vmail.mailbox_addresses(bigint, bigint),
	-- the routing relation's answers (R_route.sql), which the lookups above inline
	vmail.route_domain(text), vmail.route_alias(text), vmail.route_mailbox(text), vmail.route_sender(text),
	vmail.route_alias_answer(text), vmail.route_mailbox_answer(text), vmail.route_sender_answer(text),
	vmail.route_find(text, boolean, boolean), vmail.route_deferred(text),
	vmail.route_keys(text, text, text, text, boolean, boolean),
	-- the deliberate errors (VM400, VM451): raised, not answered
	vmail.fail(text, text)
	TO vmail_lookup;
-- The self-service functions take a session token that vmail.self_login issued; no
-- function the panel may call returns a password hash.
GRANT EXECUTE ON FUNCTION
	vmail.self_login_params(text), vmail.self_login(text, text, text, integer), vmail.self_logout(text, text),
	vmail.self_rehash(text, text, text), vmail.self_overview(text),
	vmail.self_alias_add(text, text, text), vmail.self_alias_set(text, text, text), vmail.self_alias_del(text, text),
	vmail.self_account_add(text, text, text, bigint), vmail.self_account_passwd(text, text, text),
	vmail.self_account_resize(text, text, bigint), vmail.self_account_del(text, text),
	vmail.self_passwd(text, text, text),
	vmail.self_vacation_set(text, text, text, text, date, date, integer, text), vmail.self_vacation_off(text, text),
	vmail.self_vacation_show(text, text), vmail.self_forward_add(text, text, text, boolean),
	vmail.self_forward_del(text, text, text), vmail.self_forward_list(text, text)
	TO vmail_panel;
-- The panel shows customers the record to publish; the token is public once published anyway.
GRANT EXECUTE ON FUNCTION vmail.domain_proof_name(text), vmail.domain_proof_record(text) TO vmail_panel;
-- Mail programs' settings (R_client_setup.sql): the same for every address of a hosted,
-- active domain, so the panel may ask them for any address, logged in or not.
GRANT EXECUTE ON FUNCTION vmail.client_setup(text), vmail.client_dns_records(text), vmail.self_client_records(text)
	TO vmail_panel;
