"""Self-service sessions (issue 15 item 2) against a real PostgreSQL: the panel's role reads
no password hash, logs in by sending a derived hash to vmail.self_login, and every self_*
function takes the session token it got back.  A password change, an administrator's reset
or a suspension ends the account's sessions.

Plain SQL as the vmail_panel role (SET ROLE), the way a subverted panel would use it.
"""
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import pgsql  # noqa: E402

# Well-formed strings; the database compares them, it never computes Argon2 or crypt(3).
JAN = "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhhcw"
EWA = "{SHA512-CRYPT}$6$saltsalt$AbCdEfGhIjKlMnOpQrStUvWxYz0123456789./AbCdEfGhIjKlMnOpQrStUvWxYz0123456789./abcdefg"
FAKE_SHAPE = re.compile(r"^\{ARGON2ID\}\$argon2id\$v=19\$m=8,t=1,p=1\$[A-Za-z0-9+/]{22}\$$")
TOKEN = re.compile(r"^[0-9a-f]{64}$")
FORGED = "ab" * 32


def setUpModule():
    pgsql.server_up()


class SelfSessionTest(unittest.TestCase):
    def setUp(self):
        self.db = pgsql.fresh_database("self_" + self._testMethodName[5:])
        self.sql("SELECT vmail.customer_add('acme', 'Acme')")
        self.sql(f"SELECT vmail.shell_add('acme', 'ewa', 2002, 2002, '/home/ewa', '{EWA}', 100*1024*1024)")
        self.sql(f"SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{JAN}', 100*1024*1024)")
        self.sql("SELECT vmail.domain_add('acme', 'acme.lublin.pl')")
        self.sql("SELECT vmail.domain_set_state('acme.lublin.pl', 'active')")
        self.sql("SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl')")

    def sql(self, q):
        return pgsql.query(self.db, q)

    def panel(self, q):
        """q as the panel's role; (ok, output or error)."""
        r = pgsql._psql(self.db, "SET ROLE vmail_panel; " + q)
        return r.returncode == 0, (r.stdout if r.returncode == 0 else r.stderr).strip()

    def login(self, login="jan", derived=JAN):
        ok, out = self.panel(f"SELECT vmail.self_login('{login}', '{derived}', '192.0.2.7', 3600)")
        self.assertTrue(ok, out)
        return out

    def refused(self, q, sqlstate):
        ok, out = self.panel(q)
        self.assertFalse(ok, f"expected {sqlstate} from {q}, got {out!r}")
        self.assertIn(sqlstate, out)

    def test_panel_role_reads_no_hash(self):
        for table, column in (("shell_account", "password"), ("mail_account", "password"),
                              ("self_session", "token_hash"), ("self_secret", "secret"),
                              ("audit_log", "after")):
            with self.subTest(table=table):
                self.refused(f"SELECT {column} FROM vmail.{table} LIMIT 1", "permission denied")
        self.refused("SELECT vmail.self_auth('jan')", "self_auth")
        # Everything the role may call is listed here: a function added later that returns
        # a hash must be looked at before it lands in this list.
        ok, out = self.panel("SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc p"
                             " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'vmail'"
                             " AND has_function_privilege('vmail_panel', p.oid, 'EXECUTE')")
        self.assertTrue(ok, out)
        self.assertEqual(sorted(out.split(" ")), sorted([
            "vmail.client_dns_records(text)", "vmail.client_setup(text)",
            "vmail.domain_proof_name(text)", "vmail.domain_proof_record(text)",
            "vmail.self_account_add(text,text,text,bigint)", "vmail.self_account_del(text,text)",
            "vmail.self_account_passwd(text,text,text)", "vmail.self_account_resize(text,text,bigint)",
            "vmail.self_alias_add(text,text,text)", "vmail.self_alias_del(text,text)",
            "vmail.self_alias_set(text,text,text)", "vmail.self_client_records(text)",
            "vmail.self_login(text,text,text,integer)",
            "vmail.self_login_params(text)", "vmail.self_logout(text,text)", "vmail.self_overview(text)",
            "vmail.self_passwd(text,text,text)", "vmail.self_rehash(text,text,text)",
            "vmail.self_vacation_set(text,text,text,text,date,date,integer,text)",
            "vmail.self_vacation_off(text,text)", "vmail.self_vacation_show(text,text)",
            "vmail.self_forward_add(text,text,text,boolean)", "vmail.self_forward_del(text,text,text)",
            "vmail.self_forward_list(text,text)"]))

    def test_login_params_hide_the_hash_and_unknown_logins(self):
        ok, jan = self.panel("SELECT vmail.self_login_params('JAN')")
        self.assertEqual(jan, JAN[:JAN.rindex("$") + 1])
        ok, ewa = self.panel("SELECT vmail.self_login_params('ewa')")
        self.assertEqual(ewa, "{SHA512-CRYPT}$6$saltsalt$")
        for login in ("nobody", "x" * 40, "suspendme"):
            with self.subTest(login=login):
                ok, a = self.panel(f"SELECT vmail.self_login_params('{login}')")
                ok2, b = self.panel(f"SELECT vmail.self_login_params('{login.upper()}')")
                self.assertTrue(ok and ok2, a)
                self.assertRegex(a, FAKE_SHAPE)   # what a real Argon2id account answers
                self.assertRegex(jan, FAKE_SHAPE)
                self.assertEqual(a, b)            # stable per login
        ok, other = self.panel("SELECT vmail.self_login_params('nobody2')")
        self.assertNotEqual(other, self.panel("SELECT vmail.self_login_params('nobody')")[1])

    def test_login_issues_a_token_stored_as_its_hash(self):
        self.assertEqual(self.login(derived=JAN + "x"), "")
        self.assertEqual(self.login(login="nobody"), "")
        tok = self.login()
        self.assertRegex(tok, TOKEN)
        self.assertNotEqual(self.login(), tok)
        self.assertEqual(self.sql(f"SELECT count(*) FROM vmail.self_session WHERE token_hash = sha256('\\x{tok}'::bytea)"
                                  " AND expires_at BETWEEN now() + interval '59 min' AND now() + interval '61 min'"), "1")
        self.assertEqual(self.sql(f"SELECT count(*) FROM vmail.self_session WHERE encode(token_hash, 'hex') = '{tok}'"), "0")
        self.assertEqual(self.sql("SELECT actor, client, action FROM vmail.audit_log WHERE action = 'login' LIMIT 1"),
                         "self:jan|192.0.2.7|login")
        ok, out = self.panel(f"SELECT vmail.self_alias_add('{tok}', 'info@acme.lublin.pl', 'jan')")
        self.assertTrue(ok, out)
        self.assertEqual(self.sql("SELECT actor FROM vmail.audit_log WHERE object_kind = 'alias'"), "self:jan")

    def test_forged_expired_or_login_instead_of_token_refused(self):
        tok = self.login()
        self.sql(f"UPDATE vmail.self_session SET expires_at = now() - interval '1 second'"
                 f" WHERE token_hash = sha256('\\x{tok}'::bytea)")
        for token in (FORGED, "jan", tok, ""):
            for q in (f"SELECT vmail.self_alias_add('{token}', 'x@acme.lublin.pl', 'jan')",
                      f"SELECT vmail.self_passwd('{token}', '{JAN}', '{JAN}')",
                      f"SELECT vmail.self_overview('{token}')"):
                with self.subTest(q=q):
                    self.refused(q, "VM401")
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.alias"), "0")

    def test_reset_password_change_and_suspension_end_sessions(self):
        new = JAN.replace("ZmFrZ", "bmV3a")
        # administrator reset
        tok = self.login()
        self.sql(f"SELECT vmail.shell_set('jan', 'password', '{new}')")
        self.refused(f"SELECT vmail.self_overview('{tok}')", "VM401")
        # suspension
        tok = self.login(derived=new)
        self.sql("SELECT vmail.shell_set('jan', 'state', 'suspended')")
        self.sql("SELECT vmail.shell_set('jan', 'state', 'active')")
        self.refused(f"SELECT vmail.self_overview('{tok}')", "VM401")
        # own change: the wrong current password changes nothing; the right one ends the
        # other sessions and keeps the one it was made in
        mine, other = self.login(derived=new), self.login(derived=new)
        self.refused(f"SELECT vmail.self_passwd('{mine}', '{JAN}', '{JAN}')", "VM412")
        ok, out = self.panel(f"SELECT vmail.self_passwd('{mine}', '{new}', '{JAN}')")
        self.assertTrue(ok, out)
        self.refused(f"SELECT vmail.self_overview('{other}')", "VM401")
        self.assertTrue(self.panel(f"SELECT vmail.self_overview('{mine}')")[0])
        # rehash at login: only from the hash the login matched, and the session stays
        other_keeps = self.login(derived=JAN)
        argon = JAN.replace("ZmFrZ", "cmVoY")
        ok, out = self.panel(f"SELECT vmail.self_rehash('{mine}', '{new}', '{argon}')")
        self.assertEqual(out, "f")
        ok, out = self.panel(f"SELECT vmail.self_rehash('{mine}', '{JAN}', '{argon}')")
        self.assertEqual(out, "t")
        self.assertEqual(self.sql("SELECT password FROM vmail.shell_account WHERE login = 'jan'"), argon)
        self.assertTrue(self.panel(f"SELECT vmail.self_overview('{mine}')")[0])
        # the same password in a new form is no password change: other sessions stay too
        self.assertTrue(self.panel(f"SELECT vmail.self_overview('{other_keeps}')")[0])

    def test_login_racing_a_reset_gets_no_session(self):
        """A reset that commits while a login with the old password runs: the login must not
        open a session the reset's trigger could not see (it reads the row FOR SHARE)."""
        new = JAN.replace("ZmFrZ", "bmV3a")
        reset = threading.Thread(target=self.sql, args=(
            f"BEGIN; UPDATE vmail.shell_account SET password = '{new}' WHERE login = 'jan'; "
            "SELECT pg_sleep(2); COMMIT;",))
        reset.start()
        try:
            def holding():
                return self.sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                "AND query LIKE '%pg_sleep(2)%' AND pid <> pg_backend_pid()") == "1"
            deadline = time.monotonic() + 30
            while not holding():
                self.assertLess(time.monotonic(), deadline, "the reset never held its row")
                time.sleep(0.05)
            ok, out = self.panel(f"SELECT vmail.self_login('jan', '{JAN}', '192.0.2.7', 3600)")
        finally:
            reset.join(30)
        self.assertTrue(ok, out)
        self.assertEqual(out, "", "a login with the old password got a session past the reset")
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.self_session"), "0")

    def test_logout_deletes_the_session(self):
        tok = self.login()
        ok, out = self.panel(f"SELECT vmail.self_logout('{tok}', '192.0.2.7')")
        self.assertTrue(ok, out)
        self.assertEqual(self.sql("SELECT count(*) FROM vmail.self_session"), "0")
        self.refused(f"SELECT vmail.self_overview('{tok}')", "VM401")


if __name__ == "__main__":
    unittest.main()
