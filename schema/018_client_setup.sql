-- 018: how customers' mail programs reach the service (issue 22): the host names, ports and
-- security the panel's "Mail programs" page, the automatic configuration (Thunderbird
-- autoconfig, Outlook autodiscover, Apple profiles) and the advised DNS records (RFC 6186
-- SRV, autoconfig CNAME) all give.  A host left NULL is the primary domain.  client_services
-- lists the endpoints offered, in the order they are advertised: implicit TLS first (RFC
-- 8314), then STARTTLS; POP3 is off until listed.
ALTER TABLE vmail.settings
	ADD COLUMN service_name text NOT NULL DEFAULT 'Platon'
		CHECK (length(service_name) BETWEEN 1 AND 64 AND service_name !~ '[[:cntrl:]<>&"]'),
	ADD COLUMN imap_host text CHECK (imap_host IS NULL OR vmail.valid_domain_name(imap_host)),
	ADD COLUMN pop3_host text CHECK (pop3_host IS NULL OR vmail.valid_domain_name(pop3_host)),
	ADD COLUMN submission_host text CHECK (submission_host IS NULL OR vmail.valid_domain_name(submission_host)),
	-- the web host that serves autoconfig and autodiscover (vmail-panel behind nginx)
	ADD COLUMN web_host text CHECK (web_host IS NULL OR vmail.valid_domain_name(web_host)),
	ADD COLUMN client_services text[] NOT NULL DEFAULT '{imaps,imap,submissions,submission}'
		CHECK (client_services <@ '{imaps,imap,pop3s,pop3,submissions,submission}'),
	ADD COLUMN imaps_port integer NOT NULL DEFAULT 993 CHECK (imaps_port BETWEEN 1 AND 65535),
	ADD COLUMN imap_port integer NOT NULL DEFAULT 143 CHECK (imap_port BETWEEN 1 AND 65535),
	ADD COLUMN pop3s_port integer NOT NULL DEFAULT 995 CHECK (pop3s_port BETWEEN 1 AND 65535),
	ADD COLUMN pop3_port integer NOT NULL DEFAULT 110 CHECK (pop3_port BETWEEN 1 AND 65535),
	ADD COLUMN submissions_port integer NOT NULL DEFAULT 465 CHECK (submissions_port BETWEEN 1 AND 65535),
	ADD COLUMN submission_port integer NOT NULL DEFAULT 587 CHECK (submission_port BETWEEN 1 AND 65535);
