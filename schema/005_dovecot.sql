-- 005_dovecot: what vmaild's Dovecot dict service needs beyond 003.  Quota reads and writes
-- that check who asks (the uid of the process on the other end of the socket), and a whole
-- batch of Dovecot dict transactions applied by one statement, so that many deliveries share
-- one database transaction and are acknowledged only once it committed.

-- The uid a login's mail processes run under (Dovecot setuid()s to it); NULL if unknown.
CREATE FUNCTION vmail.mail_uid(p_login text) RETURNS integer
LANGUAGE sql STABLE AS $$
	SELECT f.uid FROM vmail.mailbox_facts(p_login) f
$$;

-- May a process running as p_peer_uid touch p_login's counters?  p_peer_uid < 0 is a trusted
-- peer (root, Dovecot's own users).  An unknown login is refused to untrusted peers like a
-- foreign one, so that probing tells nothing about which logins exist.
CREATE FUNCTION vmail.dict_peer_may(p_login text, p_peer_uid integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT p_peer_uid < 0 OR vmail.mail_uid(p_login) IS NOT DISTINCT FROM p_peer_uid
$$;

-- quota_get for a peer: 'denied' when dict_peer_may says no, else quota_get's answer
-- (NULL = no counter, so Dovecot recounts).
CREATE FUNCTION vmail.dict_quota_get(p_login text, p_key text, p_root text, p_peer_uid integer)
RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN vmail.dict_peer_may(p_login, p_peer_uid)
		THEN vmail.quota_get(p_login, p_key, p_root) ELSE 'denied' END
$$;

-- A batch of Dovecot transactions on mailbox counters, applied in array order.  Per
-- transaction i: the login, what to do with storage (p_bop[i], p_bval[i]) and with messages
-- (p_mop[i], p_mval[i]) — '' leave alone, '+' add (only to an existing counter), '=' set
-- (creates the counter), 'x' unset — and the peer's uid (-1 = trusted).  The answer has one
-- letter per transaction: O applied; N an increment found no counter, so nothing of that
-- transaction changed and Dovecot recounts (an increment never creates a counter); D denied.
CREATE FUNCTION vmail.dict_commit(p_login text[], p_bop text[], p_bval bigint[], p_mop text[],
	p_mval bigint[], p_peer integer[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	answer text := '';
	m record;
	u vmail.mailbox_usage;
	have boolean;
	b bigint;
	n bigint;
BEGIN
	FOR i IN 1 .. coalesce(array_length(p_login, 1), 0) LOOP
		IF NOT vmail.dict_peer_may(p_login[i], p_peer[i]) THEN
			answer := answer || 'D';
			CONTINUE;
		END IF;
		m := vmail.mailbox_of(p_login[i]);
		IF m.shell_id IS NULL AND m.account_id IS NULL THEN
			answer := answer || 'N';
			CONTINUE;
		END IF;
		SELECT * INTO u FROM vmail.mailbox_usage x
		 WHERE (m.shell_id IS NOT NULL AND x.shell_account_id = m.shell_id)
		    OR (m.account_id IS NOT NULL AND x.mail_account_id = m.account_id)
		FOR UPDATE;
		have := FOUND;
		IF 'x' IN (p_bop[i], p_mop[i]) AND '=' NOT IN (p_bop[i], p_mop[i]) AND '+' NOT IN (p_bop[i], p_mop[i]) THEN
			DELETE FROM vmail.mailbox_usage x
			 WHERE (m.shell_id IS NOT NULL AND x.shell_account_id = m.shell_id)
			    OR (m.account_id IS NOT NULL AND x.mail_account_id = m.account_id);
			answer := answer || 'O';
			CONTINUE;
		END IF;
		IF NOT have AND '+' IN (p_bop[i], p_mop[i]) THEN
			answer := answer || 'N';
			CONTINUE;
		END IF;
		b := CASE p_bop[i] WHEN '=' THEN p_bval[i] WHEN '+' THEN u.bytes + p_bval[i]
			WHEN 'x' THEN 0 ELSE coalesce(u.bytes, 0) END;
		n := CASE p_mop[i] WHEN '=' THEN p_mval[i] WHEN '+' THEN u.messages + p_mval[i]
			WHEN 'x' THEN 0 ELSE coalesce(u.messages, 0) END;
		IF have THEN
			UPDATE vmail.mailbox_usage x SET bytes = b, messages = n, updated_at = now()
			 WHERE (m.shell_id IS NOT NULL AND x.shell_account_id = m.shell_id)
			    OR (m.account_id IS NOT NULL AND x.mail_account_id = m.account_id);
		ELSIF m.shell_id IS NOT NULL THEN
			INSERT INTO vmail.mailbox_usage (shell_account_id, bytes, messages) VALUES (m.shell_id, b, n)
			ON CONFLICT (shell_account_id) DO UPDATE SET bytes = EXCLUDED.bytes,
				messages = EXCLUDED.messages, updated_at = now();
		ELSE
			INSERT INTO vmail.mailbox_usage (mail_account_id, bytes, messages) VALUES (m.account_id, b, n)
			ON CONFLICT (mail_account_id) DO UPDATE SET bytes = EXCLUDED.bytes,
				messages = EXCLUDED.messages, updated_at = now();
		END IF;
		answer := answer || 'O';
	END LOOP;
	RETURN answer;
END $$;

-- For Dovecot's sql userdb (2.4 path, or 2.3 without dict): userdb_effective with the columns
-- named the way Dovecot wants them, NULLs (no tempfail) dropped by the driver.
--   user_query = SELECT username AS user, home, mail, uid, gid, quota_rule, tempfail
--                FROM vmail.userdb_effective('%u')
-- (no new function needed: documented in contrib/dovecot/dovecot-sql.conf.ext)
