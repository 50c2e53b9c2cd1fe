"""End-to-end: the SQL path, against the installed Dovecot: 2.3.19 on Debian 12, 2.4.1 on
Debian 13 (tests/run-all.sh runs it in both).

Run as root after building:  VMAIL_BUILD_DIR=build python3 -m unittest -v tests/e2e/test_dovecot_sql.py

Dovecot runs the contrib/dovecot files of its release as shipped (2.3: 90-vmaild-sql.conf and
dovecot-sql.conf.ext; 2.4: auth-vmaild-sql.conf.ext and 90-vmaild-quota.conf, after the
distribution's own 10-mail.conf); only the database connection and the socket and file paths
are replaced (world.World.dovecot_sql).  passdb and userdb call vmail.passdb() and
vmail.userdb_effective() (2.3) or vmail.userdb_v24() (2.4), the count backend counts the
mailbox, and quota_clone reports usage to vmaild's dict (absolute values).  R6 is carried by
the userdb's limit, recomputed at each LMTP delivery.  2.4 ignores userdb fields it does not
know without a word, so each field is checked through what Dovecot does with it (doveadm
quota get, a delivery), not only through doveadm user.  Same accounts as test_dovecot_dict.py.
"""

import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402
from test_dovecot_dict import (AccountsWorld, DISK_A, PRIMARY, PW_A, PW_B, PW_BIURO,  # noqa: E402
                               SKIP, message)

V24 = (world.dovecot_version() or (0,)) >= (2, 4)


@unittest.skipIf(SKIP, SKIP)
class DovecotSqlTest(AccountsWorld, unittest.TestCase):

    @classmethod
    def _services(cls):
        w = cls.w
        cls.quota_sock = w.path("dict-quota")
        cls.vd = w.vmaild(cls.pg.dsn, "", dict_quota_listen="unix:" + cls.quota_sock,
                          request_timeout="2s")
        cls.dc = w.dovecot_sql(cls.pg.dsn, cls.quota_sock)
        print("\n  Dovecot %s" % ".".join(map(str, cls.dc.version)), end="")

    # -- helpers ------------------------------------------------------------------------

    def userdb_limit(self, user):
        """The mailbox limit in bytes from doveadm user, in the release's own field."""
        f = self.dc.user_fields(user)
        self.assertIsInstance(f, dict, f)
        if V24:
            self.assertNotIn("quota_rule", f)
            return int(f["quota_storage_size"])
        m = re.fullmatch(r"\*:bytes=(\d+)", f.get("quota_rule", ""))
        self.assertIsNotNone(m, f)
        return int(m.group(1))

    def quota_limit_kib(self, user):
        """The limit Dovecot's quota plugin enforces (doveadm quota get: KiB)."""
        r = self.dc.doveadm("quota", "get", "-u", user)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for line in r.stdout.splitlines():
            parts = line.split()
            if parts[:3] == ["User", "quota", "STORAGE"]:
                return int(parts[4])
        self.fail("no STORAGE line in doveadm quota get: " + r.stdout)

    # -- tests --------------------------------------------------------------------------

    def test_1_auth_and_userdb(self):
        self.assertTrue(self.auth_ok(self.a, PW_A), self.dc.log()[-2000:])
        self.assertTrue(self.auth_ok("%s@%s" % (self.a, PRIMARY), PW_A))
        self.assertTrue(self.auth_ok("biuro@acme.lublin.pl", PW_BIURO))
        self.assertTrue(self.auth_ok(self.b, PW_B), "imported {SHA512-CRYPT}")
        self.assertFalse(self.auth_ok(self.a, "wrong"))
        self.assertFalse(self.auth_ok("sus@acme.lublin.pl", "Sus-pass-4"))
        self.assertFalse(self.auth_ok("o'brien@acme.lublin.pl", "x"))
        home = os.path.join(self.home_a, "mail/acme.lublin.pl/biuro.%s" % self.pg.psql(
            "SELECT id FROM vmail.mail_account WHERE address = 'biuro@acme.lublin.pl'").strip())
        f = self.dc.user_fields("biuro@acme.lublin.pl")
        self.assertIsInstance(f, dict, f)
        self.assertEqual(f.get("uid"), str(self.uid_a))
        self.assertEqual(f.get("home"), home)
        if V24:
            self.assertEqual(f.get("mail_driver"), "maildir", f)
            self.assertEqual(f.get("mail_path"), os.path.join(home, "Maildir"), f)
            self.assertEqual(f.get("mail_inbox_path"), os.path.join(home, "Maildir"), f)
            self.assertNotIn("mail", f)
        else:
            self.assertEqual(f.get("mail"), "maildir:~/Maildir", f)
        self.assertNotIn("tempfail", f)
        self.assertEqual(self.userdb_limit("biuro@acme.lublin.pl"), 1048576)
        # What the quota plugin really enforces: the field reached it.
        self.assertEqual(self.quota_limit_kib("biuro@acme.lublin.pl"), 1024)
        f = self.dc.user_fields("%s@%s" % (self.a, PRIMARY))
        self.assertEqual(f.get("user"), self.a, f)
        self.assertEqual(self.userdb_limit(self.a), DISK_A)
        self.assertEqual(self.quota_limit_kib(self.a), DISK_A // 1024)
        code, _ = self.dc.user_fields("sus@acme.lublin.pl")
        self.assertNotEqual(code, 0)
        r = self.dc.doveadm("user", "*")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue({self.a, self.b, "biuro@acme.lublin.pl"} <= set(r.stdout.split()),
                        r.stdout)

    def test_2_imap_logins(self):
        for user, password in ((self.a, PW_A), ("%s@%s" % (self.a, PRIMARY), PW_A),
                               ("biuro@acme.lublin.pl", PW_BIURO)):
            m = self.imap_login(user, password)
            self.assertNotIsInstance(m, str, "%s: %s\n%s" % (user, m, self.dc.log()[-2000:]))
            typ, data = m.select("INBOX")
            self.assertEqual(typ, "OK", data)
            typ, data = m.getquotaroot("INBOX")
            self.assertEqual(typ, "OK", data)
            self.assertIn(b"User quota", b" ".join(x for x in data[0] if isinstance(x, bytes)))
            m.logout()
        self.assertIn("AUTHENTICATIONFAILED", self.imap_login(self.a, "wrong"))
        self.assertIn("AUTHENTICATIONFAILED", self.imap_login("sus@acme.lublin.pl", "Sus-pass-4"))

    def test_3_delivery_lands_in_the_maildir_and_quota_clone_reports_usage(self):
        code, text = self.deliver("%s@%s" % (self.b, PRIMARY), message("cloned", 2000))
        self.assertEqual(code, 250, text)
        # In the Maildir's own new/, not in an INBOX elsewhere (Debian 13's stock
        # mail_inbox_path is /var/mail/%{user}).
        new = os.path.join(self.home_b, "Maildir", "new")
        self.assertEqual(len(os.listdir(new)), 1, new)
        u = self.wait_usage(self.b, lambda u: u[1] == 1, "quota_clone's report")
        self.assertGreater(u[0], 2000)
        m = self.imap_login(self.b, PW_B)
        self.assertNotIsInstance(m, str, m)
        m.select("INBOX")
        typ, data = m.search(None, "ALL")
        self.assertEqual(data[0].split(), [b"1"])
        m.store("1", "+FLAGS", "\\Deleted")
        m.expunge()
        m.logout()
        self.wait_usage(self.b, lambda u: u == (0, 0), "quota_clone after the expunge")
        print("\n  quota_clone: %s after delivery, (0, 0) after expunge" % (u,))

    def test_4_r6_through_userdb(self):
        code, text = self.deliver("biuro@acme.lublin.pl", message("fits"))
        self.assertEqual(code, 250, text)
        self.wait_usage("biuro@acme.lublin.pl", lambda u: u[1] == 1, "biuro's report")
        total = int(self.pg.psql("SELECT total FROM vmail.quota_state('%s')" % self.a))
        self.ctl("usage", "set", self.a, str(DISK_A - total - 4096))
        used = self.usage("biuro@acme.lublin.pl")[0]
        limit = self.userdb_limit("biuro@acme.lublin.pl")
        self.assertEqual(limit, used + 4096)
        self.assertEqual(self.quota_limit_kib("biuro@acme.lublin.pl"), -(-limit // 1024))
        # The shell account is nearly full: its own mailbox and its free account refuse a
        # message that does not fit, temporarily; another customer is not affected.
        for rcpt in ("biuro@acme.lublin.pl", self.a, "%s@%s" % (self.a, PRIMARY)):
            code, text = self.deliver(rcpt, message("too big", 8000))
            self.assertEqual(code, 452, "%s: %s" % (rcpt, text))
            self.assertIn("4.2.2", text)
        code, text = self.deliver("%s@%s" % (self.b, PRIMARY), message("unaffected", 8000))
        self.assertEqual(code, 250, text)
        self.ctl("usage", "set", self.a, "0")
        code, text = self.deliver("biuro@acme.lublin.pl", message("room again", 8000))
        self.assertEqual(code, 250, text)
        print("\n  R6 via userdb: limit %d bytes, LMTP 452 4.2.2 then 250" % limit)

    def test_5_suspended(self):
        code, text = self.deliver("sus@acme.lublin.pl", message("to a suspended account"))
        self.assertTrue(400 <= code < 500, "%d %s" % (code, text))

    def test_6_outage(self):
        """PostgreSQL stopped: IMAP NO [UNAVAILABLE], LMTP 4xx, never 5xx; then recovery
        without restarting Dovecot or vmaild."""
        pid = self.vd.pid
        self.pg.stop()
        t0 = time.monotonic()
        try:
            err = self.imap_login("late@acme.lublin.pl", "Late-pass-5")
            print("\n  outage: IMAP answered after %.1f s" % (time.monotonic() - t0), end="")
            self.assertIn("UNAVAILABLE", err)
            t0 = time.monotonic()
            code, text = self.deliver("late@acme.lublin.pl", message("during the outage"))
            print("\n  outage: LMTP answered after %.1f s" % (time.monotonic() - t0), end="")
            self.assertTrue(400 <= code < 500, "%d %s" % (code, text))
            code2, text2 = self.deliver(self.a, message("during the outage"))
            self.assertTrue(400 <= code2 < 500, "%d %s" % (code2, text2))
            print("\n  outage: IMAP %s; LMTP %d %s" % (err, code, text))
        finally:
            self.pg.start()
        last = []

        def recovered():
            m = self.imap_login("late@acme.lublin.pl", "Late-pass-5")
            if isinstance(m, str):
                last[:] = ["IMAP", m]
                return False
            m.logout()
            code, text = self.deliver("late@acme.lublin.pl", message("after the outage"))
            last[:] = [code, text]
            self.assertTrue(code == 250 or 400 <= code < 500, "%d %s" % (code, text))
            return code == 250
        try:
            world.wait_for("login and delivery after restart", recovered, timeout=60,
                           interval=1.0)
        except TimeoutError:
            self.fail("no recovery within 60 s of the restart; last answer: %s" % last)
        self.assertEqual(self.vd.pid, pid)
        self.assertIsNone(self.vd.proc.poll())

    def test_7_restart_during_a_pending_lookup_never_bounces(self):
        """A delivery whose userdb lookup starts while PostgreSQL is down and ends after it
        is back is deferred or delivered, never refused with a 5xx (a bounce)."""
        self.pg.stop()
        result = []

        def rcpt():
            try:
                result.append(self.deliver("%s@%s" % (self.b, PRIMARY), message("restart")))
            except Exception as e:  # reported by the test, not lost in the thread
                result.append(e)
        t = threading.Thread(target=rcpt)
        t.start()
        try:
            time.sleep(2)
        finally:
            self.pg.start()
        t.join(200)
        self.assertTrue(result, "LMTP did not answer within 200 s")
        self.assertNotIsInstance(result[0], Exception, result)
        code, text = result[0]
        print("\n  lookup pending across the restart: LMTP %d %s" % (code, text))
        self.assertTrue(code == 250 or 400 <= code < 500, "%d %s" % (code, text))


if __name__ == "__main__":
    unittest.main()
