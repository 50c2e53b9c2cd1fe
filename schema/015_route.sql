-- 015: the routing relation (issue 18).  Every answer the Postfix lookups give for a key that
-- exists, precomputed, so that a lookup is one index probe for the domain and one over the few
-- candidate keys an address has.  Filled and kept by R_route.sql (statement triggers on the
-- tables the answers come from; vmail.route_rebuild() recomputes it all).
--   key 'd.example'        a hosted domain (active or suspended): kind 'domain'
--   key 'local@d.example'  an address: kind alias, account or primary
--   key '@d.example'       the domain's catch-all
--   key '!postmaster'      the ISP's postmaster default (settings.postmaster_address)
CREATE TABLE vmail.route (
	key       text PRIMARY KEY,
	domain_id bigint,
	kind      text NOT NULL CHECK (kind IN ('domain', 'alias', 'account', 'primary', 'postmaster')),
	-- domain rows: the domain's state and the sub-address delimiters (a settings change
	-- rebuilds the relation)
	state     text,
	delims    text,
	-- the alias answer; chr(1) stands where a sub-address extension goes
	dest      text,
	-- lookup_mailbox's answer (mailboxes only) and lookup_sender's
	mailbox   text,
	sender    text,
	-- the mailboxes it delivers to (vmail.address_mailboxes, for the policy): (shells[i],
	-- accounts[i]) pairs in target order, one of each pair NULL
	shells    bigint[],
	accounts  bigint[]
);
CREATE INDEX route_domain ON vmail.route (domain_id);
