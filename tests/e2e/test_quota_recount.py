"""End-to-end: quota requests answered F during a database outage are counted, logged once
per mailbox, listed durably for a recount (across a vmaild restart), and `vmailctl usage
recount` puts the counters back in line with the Maildirs through a real Dovecot 2.3.

Run as root after building:  python3 tests/pyrun.py tests/e2e/test_quota_recount.py

The accounts are test_dovecot_dict's (AccountsWorld).  A lost counter update is made
deterministic by writing a wrong counter in SQL (what a lost commit leaves behind), then
PostgreSQL is stopped and Dovecot-shaped commits for two mailboxes reach vmaild's quota socket
(two for one of them): each is answered F; a counter lookup for a third is answered "full".  vmaild restarts during the outage; PostgreSQL
comes back; the rows appear in vmail.usage_recount; the recount makes the counter equal
what the Maildir holds, and empties the list.
"""

import os
import pwd
import re
import subprocess
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import dictclient  # noqa: E402
import world  # noqa: E402
from test_dovecot_dict import PRIMARY, SKIP, AccountsWorld, message  # noqa: E402

BIURO = "biuro@acme.lublin.pl"


def maildir_usage(home):
    """(bytes, messages) of every message file under home/Maildir, as Dovecot counts them."""
    total = count = 0
    for root, dirs, files in os.walk(os.path.join(home, "Maildir")):
        if os.path.basename(root) in ("cur", "new"):
            for n in files:
                total += os.path.getsize(os.path.join(root, n))
                count += 1
    return total, count


@unittest.skipIf(SKIP, SKIP)
class QuotaRecountTest(AccountsWorld, unittest.TestCase):
    @classmethod
    def _services(cls):
        w = cls.w
        cls.state = w.path("state")
        os.mkdir(cls.state, 0o700)
        nobody = pwd.getpwnam("nobody")
        os.chown(cls.state, nobody.pw_uid, nobody.pw_gid)
        cls.metrics_port = world.free_port()
        cls._dict_services(state_directory=cls.state,
                           metrics_listen="inet:127.0.0.1:%d" % cls.metrics_port)

    def metric(self, request, reason):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=5) as r:
            text = r.read().decode()
        m = re.search(r'^vmaild_dict_quota_failures_total\{request="%s",reason="%s"\} (\d+)$'
                      % (request, reason), text, re.M)
        return int(m.group(1)) if m else None

    def listed(self):
        out = self.pg.psql("SELECT login || ' ' || reason || ' ' || count "
                           "FROM vmail.usage_recount ORDER BY login")
        return out.strip().splitlines()

    def test_outage_recount(self):
        for rcpt in (self.b, BIURO):
            address = rcpt if "@" in rcpt else "%s@%s" % (rcpt, PRIMARY)
            for i in range(2):
                code, text = self.deliver(address, message("before %d" % i, 2000))
                self.assertEqual(code, 250, text)
            self.wait_usage(rcpt, lambda u: u[1] == 2, "the counter of " + rcpt)
        # What lost commits leave behind: counters below the Maildirs.
        self.pg.psql("UPDATE vmail.mailbox_usage SET bytes = 10, messages = 0")
        truth_b = maildir_usage(self.home_b)
        self.assertEqual(truth_b[1], 2)
        before = self.metric("commit", "unavailable")
        before_lookup = self.metric("lookup", "unavailable")
        self.assertIsNotNone(before, "no vmaild_dict_quota_failures_total series")
        log_at = len(self.vd.log())

        self.pg.stop()
        try:
            with dictclient.Client(self.quota_sock, "quota", timeout=30) as c:
                for user in (self.b, self.b, BIURO):
                    reply = c.commit(user, "A{t}\tpriv/quota/storage\t100",
                                     "A{t}\tpriv/quota/messages\t1")
                    self.assertTrue(reply.startswith("F"), reply)
                # A counter lookup is answered "full" (Dovecot defers the mail): counted and
                # logged, not listed, since nothing was stored uncounted.
                reply = c.storage(self.a)
                self.assertEqual(reply, "O9223372036854775807")
            self.assertEqual(self.metric("commit", "unavailable"), before + 3)
            self.assertEqual(self.metric("lookup", "unavailable"), before_lookup + 1)
            log = self.vd.log()[log_at:]
            lines = [l for l in log.splitlines() if "listed for a recount" in l
                     or "answered full" in l]
            print("\n  " + "\n  ".join(lines))
            self.assertEqual(len([l for l in lines if " %s " % self.b in l]), 1, lines)
            self.assertEqual(len([l for l in lines if " %s " % BIURO in l]), 1, lines)
            self.assertEqual(len([l for l in lines if " %s " % self.a in l]), 1, lines)
            # A restart during the outage: the names wait in the state directory.
            self.vd.stop()
            with open(os.path.join(self.state, "usage-recount")) as f:
                kept = f.read()
            self.assertIn("commit-unavailable %s\n" % self.b, kept)
            self.assertIn("commit-unavailable %s\n" % BIURO, kept)
            self.assertNotIn(self.a, kept)
            self.vd.start()
        finally:
            self.pg.start()
        try:
            rows = world.wait_for("the rows in vmail.usage_recount",
                                  lambda: (lambda r: r if len(r) == 2 else None)(self.listed()),
                                  timeout=30, interval=0.2)
        except TimeoutError:
            self.fail("not listed: %s; vmaild log:\n%s" % (self.listed(), self.vd.log()[-3000:]))
        print("  listed: %s" % rows)
        self.assertEqual(rows, sorted(["%s commit-unavailable 1" % BIURO,
                                       "%s commit-unavailable 1" % self.b]))
        world.wait_for("the file emptied", lambda: os.path.getsize(
            os.path.join(self.state, "usage-recount")) == 0, timeout=10)

        out = self.w.vmailctl("usage", "pending")
        self.assertIn(self.b, out)
        out = self.w.vmailctl("usage", "recount", "--dry-run", "--all")
        self.assertIn("doveadm", out)
        self.assertEqual(len(self.listed()), 2)
        out = self.w.vmailctl("usage", "recount", "--all", "--doveadm-config", self.dc.path)
        print("  " + out.strip().replace("\n", "\n  "))
        self.assertEqual(self.listed(), [])
        self.assertEqual(self.usage(self.b), maildir_usage(self.home_b))
        biuro_home = self.pg.psql("SELECT home FROM vmail.mail_account "
                                  "WHERE address = '%s'" % BIURO).strip()
        self.assertEqual(self.usage(BIURO), maildir_usage(biuro_home))
        print("  after the recount: %s %s, %s %s" % (self.b, self.usage(self.b), BIURO,
                                                     self.usage(BIURO)))

    def test_recount_failure_keeps_the_row(self):
        self.pg.psql("SELECT vmail.usage_recount_add(ARRAY['nobody-such@nowhere.invalid'], "
                     "ARRAY['commit-unavailable'], ARRAY[1])")
        r = subprocess.run([os.path.join(world.BUILD, "vmailctl"), "-c",
                            self.w.path("vmailctl.conf"), "usage", "recount",
                            "nobody-such@nowhere.invalid", "--doveadm-config", self.dc.path],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        err = self.pg.psql("SELECT attempts || ' ' || coalesce(last_error, '') "
                           "FROM vmail.usage_recount WHERE login = 'nobody-such@nowhere.invalid'")
        self.assertTrue(err.startswith("1 "), err)
        self.pg.psql("DELETE FROM vmail.usage_recount")


if __name__ == "__main__":
    unittest.main()
