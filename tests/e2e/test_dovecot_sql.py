"""End-to-end: the SQL path (what Dovecot 2.4 needs, run here with Dovecot 2.3's pgsql driver).

Run as root after building:  VMAIL_BUILD_DIR=build python3 -m unittest -v tests/e2e/test_dovecot_sql.py

Dovecot runs contrib/dovecot/90-vmaild-sql.conf and dovecot-sql.conf.ext as shipped
(only the socket path, the file path and the connect string are replaced): passdb and
userdb call vmail.passdb() and vmail.userdb_effective(), the count backend counts the
mailbox, and quota_clone reports usage to vmaild's dict (absolute values).  R6 is carried
by the userdb's quota_rule, recomputed at each LMTP delivery.  Same accounts as
test_dovecot_dict.py.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402
from test_dovecot_dict import (AccountsWorld, DISK_A, PRIMARY, PW_A, PW_B, PW_BIURO,  # noqa: E402
                               SKIP, contrib, message)


@unittest.skipIf(SKIP, SKIP)
class DovecotSqlTest(AccountsWorld, unittest.TestCase):

    @classmethod
    def _services(cls):
        w = cls.w
        cls.quota_sock = w.path("dict-quota")
        cls.vd = w.vmaild(cls.pg.dsn, "", dict_quota_listen="unix:" + cls.quota_sock,
                          request_timeout="2s")
        ext = w.path("dovecot-sql.conf.ext")
        text = contrib("dovecot-sql.conf.ext")
        lines = [ln for ln in text.splitlines() if ln.startswith("connect = ")]
        assert len(lines) == 1, "contrib dovecot-sql.conf.ext lost its connect line"
        with open(ext, "w") as f:
            f.write(text.replace(lines[0], "connect = " + cls.pg.dsn))
        conf = contrib("90-vmaild-sql.conf")
        conf = conf.replace("/etc/dovecot/dovecot-sql.conf.ext", ext)
        conf = conf.replace("/run/vmaild/dict-quota", cls.quota_sock)
        cls.dc = w.dovecot(conf)

    def test_1_auth_and_userdb(self):
        self.assertTrue(self.auth_ok(self.a, PW_A), self.dc.log()[-2000:])
        self.assertTrue(self.auth_ok("%s@%s" % (self.a, PRIMARY), PW_A))
        self.assertTrue(self.auth_ok("biuro@acme.lublin.pl", PW_BIURO))
        self.assertTrue(self.auth_ok(self.b, PW_B), "imported {SHA512-CRYPT}")
        self.assertFalse(self.auth_ok(self.a, "wrong"))
        self.assertFalse(self.auth_ok("sus@acme.lublin.pl", "Sus-pass-4"))
        f = self.dc.user_fields("biuro@acme.lublin.pl")
        self.assertIsInstance(f, dict, f)
        self.assertEqual(f.get("uid"), str(self.uid_a))
        self.assertEqual(f.get("home"), os.path.join(self.home_a, "mail/acme.lublin.pl/biuro"))
        self.assertEqual(f.get("quota_rule"), "*:bytes=1048576")
        self.assertNotIn("tempfail", f)
        f = self.dc.user_fields("%s@%s" % (self.a, PRIMARY))
        self.assertEqual(f.get("user"), self.a, f)
        self.assertEqual(f.get("quota_rule"), "*:bytes=%d" % DISK_A)
        code, _ = self.dc.user_fields("sus@acme.lublin.pl")
        self.assertNotEqual(code, 0)
        r = self.dc.doveadm("user", "*")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue({self.a, self.b, "biuro@acme.lublin.pl"} <= set(r.stdout.split()),
                        r.stdout)

    def test_2_quota_clone_reports_usage(self):
        code, text = self.deliver("%s@%s" % (self.b, PRIMARY), message("cloned", 2000))
        self.assertEqual(code, 250, text)
        u = self.wait_usage(self.b, lambda u: u[1] == 1, "quota_clone's report")
        self.assertGreater(u[0], 2000)
        m = self.imap_login(self.b, PW_B)
        self.assertNotIsInstance(m, str, m)
        self.assertEqual(m.list()[0], "OK")
        m.select("INBOX")
        m.store("1", "+FLAGS", "\\Deleted")
        m.expunge()
        m.logout()
        self.wait_usage(self.b, lambda u: u == (0, 0), "quota_clone after the expunge")
        print("\n  quota_clone: %s after delivery, (0, 0) after expunge" % (u,))

    def test_3_r6_through_userdb(self):
        code, text = self.deliver("biuro@acme.lublin.pl", message("fits"))
        self.assertEqual(code, 250, text)
        self.wait_usage("biuro@acme.lublin.pl", lambda u: u[1] == 1, "biuro's report")
        total = int(self.pg.psql("SELECT total FROM vmail.quota_state('%s')" % self.a))
        self.ctl("usage", "set", self.a, str(DISK_A - total - 4096))
        f = self.dc.user_fields("biuro@acme.lublin.pl")
        used = self.usage("biuro@acme.lublin.pl")[0]
        self.assertEqual(f.get("quota_rule"), "*:bytes=%d" % (used + 4096))
        code, text = self.deliver("biuro@acme.lublin.pl", message("too big", 8000))
        self.assertEqual(code, 452, text)
        code, text = self.deliver("%s@%s" % (self.b, PRIMARY), message("unaffected", 8000))
        self.assertEqual(code, 250, text)
        self.ctl("usage", "set", self.a, "0")
        code, text = self.deliver("biuro@acme.lublin.pl", message("room again", 8000))
        self.assertEqual(code, 250, text)
        print("\n  R6 via userdb: quota_rule %s, LMTP 452 then 250" % f.get("quota_rule"))

    def test_4_suspended(self):
        code, text = self.deliver("sus@acme.lublin.pl", message("to a suspended account"))
        self.assertTrue(400 <= code < 500, "%d %s" % (code, text))


if __name__ == "__main__":
    unittest.main()
