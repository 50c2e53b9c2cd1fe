-- 014: the mailboxes whose quota counters may be wrong (issue 17).  vmaild answers F to a quota
-- lookup or commit it could not run against the database (down, frozen past the request
-- deadline); Dovecot then stores the mail uncounted ("copying mail anyway") or loses the
-- counter change, and a commit a frozen server applies later may have been answered F too.
-- vmaild puts each such mailbox here once the database answers again (it keeps them in a file
-- in its state_directory meanwhile); `vmailctl usage recount` runs `doveadm quota recalc` for
-- each row and removes it on success.  One row per Dovecot user name.
CREATE TABLE vmail.usage_recount (
	-- doveadm reads * and ? in a user name as wildcards: only vmaild's overflow entry, "*"
	-- with reason "overflow" (the list outgrew its file: recount everyone), may hold them.
	login text PRIMARY KEY CHECK (length(login) BETWEEN 1 AND 1024)
		CHECK (login !~ '[*?]' OR (login = '*' AND reason = 'overflow')),
	first_failed_at timestamptz NOT NULL DEFAULT now(),
	last_failed_at timestamptz NOT NULL DEFAULT now(),
	reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 32),
	count integer NOT NULL DEFAULT 1 CHECK (count > 0),
	attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	last_error text
);
