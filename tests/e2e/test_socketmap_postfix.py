"""End-to-end: vmaild's socketmap behind a real Postfix 3.7, and vmaild's own life cycle.

Run as root after building:  python3 -m unittest discover -s tests/e2e -v
(VMAIL_BUILD_DIR selects the build directory; VMAIL_KEEP_WORLD=1 keeps /tmp/vmail-e2e-*.)

PostfixTest uses contrib/postfix/main.cf.vmaild as shipped (only the LMTP
destination is replaced by a socket nobody listens on, so accepted mail stays
queued), with the socket in the private queue directory and Debian's chrooted
smtpd.  DaemonTest talks the socketmap protocol directly.
"""

import os
import re
import socket
import time
import unittest

import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world
from smclient import Client as SocketmapClient, netstring

DATA_SQL = """
SELECT vmail.customer_add('acme', 'ACME');
SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{CRYPT}x', 1073741824);
SELECT vmail.domain_add('acme', 'acme.lublin.pl');
SELECT vmail.domain_set_state('acme.lublin.pl', 'active');
SELECT vmail.domain_add('acme', 'catchall.lublin.pl');
SELECT vmail.domain_set_state('catchall.lublin.pl', 'active');
SELECT vmail.domain_add('acme', 'pending.lublin.pl');
SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl');
SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'jan', '{CRYPT}x', 104857600);
SELECT vmail.alias_add('info@acme.lublin.pl', ARRAY['biuro@acme.lublin.pl'], false, NULL);
SELECT vmail.alias_add('@catchall.lublin.pl', ARRAY['jan@platon.man.lublin.pl'], false, NULL);
"""

REQUEST_TIMEOUT_S = 2.0

SKIP = world.missing_prerequisites()


def contrib_main_cf(lmtp_socket):
    """contrib/postfix/main.cf.vmaild with the LMTP destination pointed at lmtp_socket."""
    with open(os.path.join(world.REPO, "contrib", "postfix", "main.cf.vmaild")) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^virtual_transport = .*$", "virtual_transport = lmtp:unix:" +
                      lmtp_socket, text)
    assert n == 1, "contrib main.cf lost its virtual_transport line"
    assert "socketmap:unix:private/vmaild:alias" in text
    return text


@unittest.skipIf(SKIP, SKIP)
class PostfixTest(unittest.TestCase):
    """RCPT outcomes through Postfix, before, during and after a PostgreSQL outage."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World()
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql(DATA_SQL)
            cls.pf = cls.w.postfix(
                contrib_main_cf(cls.w.path("nobody-listens-lmtp")), start=False)
            # The socket inside the queue directory, owned by postfix, as the guide says.
            cls.socket = os.path.join(cls.pf.private, "vmaild")
            # The contrib lines also name the policy socket: smtpd defers without it.
            cls.vd = cls.w.vmaild(cls.pg.dsn, "unix:" + cls.socket, socket_owner="postfix",
                                  socket_mode="0600",
                                  policy_listen="unix:" + cls.socket + "-policy",
                                  request_timeout="%dms" % (REQUEST_TIMEOUT_S * 1000))
            cls.pf.start()
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def rcpt(self, address, sender=""):
        """(code, text) of RCPT TO:<address> after MAIL FROM:<sender>, fresh session."""
        with self.pf.smtp() as s:
            code, msg = s.ehlo()
            self.assertEqual(code, 250, msg)
            code, msg = s.mail(sender)
            self.assertEqual(code, 250, msg)
            code, msg = s.rcpt(address)
            return code, msg.decode(errors="replace")

    def postmap(self, key, name="alias"):
        return self.pf.postmap_q(key, "socketmap:unix:private/vmaild:" + name)

    def assertRcpt(self, address, code, enhanced=None, sender=""):
        got, msg = self.rcpt(address, sender)
        self.assertEqual(got, code, "RCPT TO:<%s>: %d %s\nvmaild log tail:\n%s" % (
            address, got, msg, self.vd.log()[-3000:]))
        if enhanced:
            self.assertTrue(msg.startswith(enhanced), "%s: %s" % (address, msg))
        return msg

    def test_1_accepts_and_rejects(self):
        cases = [
            ("biuro@acme.lublin.pl", 250, None),          # mail account
            ("jan@platon.man.lublin.pl", 250, None),      # shell account's primary address
            ("info@acme.lublin.pl", 250, None),           # alias
            ("Info+Tag@ACME.Lublin.PL", 250, None),       # alias, sub-address, sender's case
            ("Biuro+x@acme.lublin.pl", 250, None),        # mailbox with sub-address
            ("nobody@acme.lublin.pl", 550, "5.1.1"),      # unknown in a hosted domain
            ("anything@catchall.lublin.pl", 250, None),   # catch-all domain
            ("Other.Name@CatchAll.lublin.pl", 250, None),
            ("nobody@pending.lublin.pl", 554, "5.7.1"),   # not active: not ours, no relay
            ("someone@example.org", 554, "5.7.1"),        # not ours at all
        ]
        for address, code, enhanced in cases:
            with self.subTest(address=address):
                self.assertRcpt(address, code, enhanced)

    def test_2_postmap_agrees_with_smtp(self):
        expect = {
            "biuro@acme.lublin.pl": "biuro@acme.lublin.pl",
            "jan@platon.man.lublin.pl": "jan@platon.man.lublin.pl",
            "info@acme.lublin.pl": "biuro@acme.lublin.pl",
            "Info+Tag@ACME.Lublin.PL": "biuro+tag@acme.lublin.pl",
            "anything@catchall.lublin.pl": "jan@platon.man.lublin.pl",
            "nobody@acme.lublin.pl": None,
            "nobody@pending.lublin.pl": None,
        }
        for key, value in expect.items():
            with self.subTest(key=key):
                rc, out, err = self.postmap(key)
                if value is None:
                    self.assertEqual((rc, out, err), (1, "", ""))  # not found, no error
                    code, _ = self.rcpt(key)
                    self.assertGreaterEqual(code, 550)
                else:
                    self.assertEqual((rc, out), (0, value), err)
                    code, _ = self.rcpt(key)
                    self.assertEqual(code, 250)
        self.assertEqual(self.postmap("acme.lublin.pl", "domain")[:2], (0, "acme.lublin.pl"))
        self.assertEqual(self.postmap("pending.lublin.pl", "domain")[0], 1)
        self.assertEqual(self.postmap("Biuro+x@acme.lublin.pl", "mailbox")[:2],
                         (0, "biuro@acme.lublin.pl"))
        rc, out, _ = self.postmap("info@acme.lublin.pl", "sender")
        self.assertEqual((rc, sorted(out.split(","))), (0, ["biuro@acme.lublin.pl", "jan"]))

    def test_3_sender_login_map(self):
        # smtpd consults smtpd_sender_login_maps only with SASL enabled (Dovecot comes in a
        # later issue), so the map is checked the way smtpd would query it.
        expect = {
            "jan@platon.man.lublin.pl": ["jan"],
            "Biuro@acme.lublin.pl": ["biuro@acme.lublin.pl", "jan"],
            "info@acme.lublin.pl": ["biuro@acme.lublin.pl", "jan"],
            "nobody@acme.lublin.pl": None,       # unknown in a hosted domain: nobody owns it
            "stranger@example.org": None,
        }
        for key, logins in expect.items():
            with self.subTest(key=key):
                rc, out, err = self.postmap(key, "sender")
                if logins is None:
                    self.assertEqual((rc, out, err), (1, "", ""))
                else:
                    self.assertEqual((rc, sorted(out.split(","))), (0, logins), err)

    def test_4_outage_is_temporary_and_recovers(self):
        pid = self.vd.pid
        self.pg.kill()
        try:
            # Keys never looked up before: a cache could not have answered them.
            for address in ("unknown-outage@acme.lublin.pl",     # would be 550
                            "Info+outage@acme.lublin.pl",        # would be 250
                            "outage@catchall.lublin.pl",         # would be 250
                            "x@never-seen.lublin.pl"):           # domain never looked up
                with self.subTest(address=address):
                    t0 = time.monotonic()
                    got, msg = self.rcpt(address)
                    # 451 4.3.0 when the domain lookup fails; 450 4.7.1 when vmaild's cache
                    # still knew the domain (served stale) and the address lookup failed.
                    self.assertIn((got, msg[:5]), ((451, "4.3.0"), (450, "4.7.1")),
                                  "RCPT TO:<%s>: %d %s" % (address, got, msg))
                    # Postfix asks more than one map per RCPT; each waits at most the deadline.
                    self.assertLess(time.monotonic() - t0, 3 * REQUEST_TIMEOUT_S + 2)
            rc, out, err = self.postmap("unknown-outage2@acme.lublin.pl")
            self.assertEqual(rc, 1)
            self.assertIn("temporary error", err)   # a lookup error, not "not found"
        finally:
            self.pg.start()
        # The same vmaild reconnects by itself.
        world.wait_for("lookups to work again",
                       lambda: self.rcpt("Info+after@acme.lublin.pl")[0] == 250, timeout=60,
                       interval=0.5)
        # Postfix's smtpd caches address resolution, including the failures of the
        # outage, for the life of the process: check with fresh keys again.
        self.assertRcpt("unknown-after@acme.lublin.pl", 550, "5.1.1")
        self.assertRcpt("after@catchall.lublin.pl", 250)
        self.assertEqual(self.vd.pid, pid)
        self.assertIsNone(self.vd.proc.poll())


@unittest.skipIf(SKIP, SKIP)
class DaemonTest(unittest.TestCase):
    """Wire behaviour, limits, reload and stop, without Postfix."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World()
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql(DATA_SQL)
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def start(self, **settings):
        path = self.w.path("vd-%s.sock" % self._testMethodName)
        vd = world.Vmaild(self.w.path("vd-" + self._testMethodName), self.pg.dsn,
                          "unix:" + path, socket_mode="0666", **settings)
        self.addCleanup(vd.close)
        vd.start()
        return vd, path

    def client(self, path):
        c = SocketmapClient(path)
        self.addCleanup(c.close)
        return c

    def test_replies_exact_and_in_order(self):
        vd, path = self.start()
        c = self.client(path)
        # All pipelined in one write; replies must come back in request order.
        reqs = [("alias", "info@acme.lublin.pl"), ("alias", "nobody@acme.lublin.pl"),
                ("domain", "acme.lublin.pl"), ("bogus", "x"), ("alias", ""),
                ("mailbox", "BIURO@acme.lublin.pl"), ("sender", "info@acme.lublin.pl")] * 20
        c.send(b"".join(netstring("%s %s" % r) for r in reqs))
        expect = ["OK biuro@acme.lublin.pl", "NOTFOUND ", "OK acme.lublin.pl",
                  "PERM unknown map bogus", "NOTFOUND ", "OK biuro@acme.lublin.pl", None] * 20
        for want in expect:
            got = c.reply()
            if want is None:
                self.assertRegex(got, r"^OK (biuro@acme\.lublin\.pl,jan|jan,biuro@acme\.lublin\.pl)$")
            else:
                self.assertEqual(got, want)
        # Nothing extra on the wire (no newline after the comma).
        c.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            c.sock.recv(1)

    def test_backpressure_keeps_order(self):
        vd, path = self.start(max_pipelined=2)
        c = self.client(path)
        keys = ["k%d@catchall.lublin.pl" % i for i in range(300)]
        c.send(b"".join(netstring("alias " + k) for k in keys))
        for k in keys:
            self.assertEqual(c.reply(), "OK jan@platon.man.lublin.pl")

    def test_oversize_request(self):
        vd, path = self.start()
        c = self.client(path)
        c.send(b"10001:alias ")  # length alone is over the 10000-byte limit
        self.assertEqual(c.reply(), "PERM request too large")
        self.assertTrue(c.at_eof())

    def test_malformed_netstring_closes_without_reply(self):
        vd, path = self.start()
        for junk in (b"abc", b"5:aliasX", b"05:alias,", b"3:abcX", b" 3:abc,"):
            with self.subTest(junk=junk):
                c = self.client(path)
                c.send(junk)
                self.assertTrue(c.at_eof())

    def test_max_connections(self):
        vd, path = self.start(max_connections=2)
        a, b = self.client(path), self.client(path)
        self.assertEqual(a.lookup("domain", "acme.lublin.pl"), "OK acme.lublin.pl")
        self.assertEqual(b.lookup("domain", "acme.lublin.pl"), "OK acme.lublin.pl")
        c = self.client(path)
        self.assertEqual(c.lookup("domain", "acme.lublin.pl"), "TEMP too many connections")
        self.assertTrue(c.at_eof())
        a.close()
        time.sleep(0.2)
        d = self.client(path)
        self.assertEqual(d.lookup("domain", "acme.lublin.pl"), "OK acme.lublin.pl")

    def test_idle_timeout(self):
        vd, path = self.start(idle_timeout="300ms")
        c = self.client(path)
        self.assertEqual(c.lookup("domain", "acme.lublin.pl"), "OK acme.lublin.pl")
        t0 = time.monotonic()
        self.assertTrue(c.at_eof(timeout=3))
        self.assertLess(time.monotonic() - t0, 2)

    def test_reload(self):
        vd, path = self.start()
        c = self.client(path)
        # A broken file changes nothing.
        vd.write_config("this is not valid\n")
        vd.reload()
        self.assertIn("reload failed, keeping the running configuration", vd.log())
        self.assertEqual(c.lookup("domain", "acme.lublin.pl"), "OK acme.lublin.pl")
        # A good one applies what may change and says what may not.
        vd.settings["socket_mode"] = "0600"
        vd.settings["log_level"] = "info"
        vd.write_config()
        vd.reload()
        self.assertIn("socket_mode cannot change without a restart", vd.log())
        self.assertEqual(c.lookup("domain", "acme.lublin.pl"), "OK acme.lublin.pl")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o666)

    def test_stop_answers_in_flight(self):
        vd, path = self.start(request_timeout="1500ms")
        c = self.client(path)
        self.assertEqual(c.lookup("domain", "acme.lublin.pl"), "OK acme.lublin.pl")
        self.pg.kill()
        try:
            c.send(netstring("alias inflight@acme.lublin.pl"))
            time.sleep(0.3)  # the request is now waiting for the database
            vd.proc.send_signal(15)
            vd.wait_notification("STOPPING=1")
            self.assertEqual(c.reply(), "TEMP database unavailable")
            self.assertEqual(vd.proc.wait(10), 0)
            self.assertTrue(c.at_eof())
        finally:
            self.pg.start()

    def test_notify_abstract_socket(self):
        vd, path = self.start(notify_abstract=True)   # start() waited for READY=1
        vd.reload()                                    # RELOADING=1, then READY=1
        self.assertEqual(vd.stop(), 0)
        vd.wait_notification("STOPPING=1")

    def test_refuses_root(self):
        vd = world.Vmaild(self.w.path("vd-root"), self.pg.dsn,
                          "unix:" + self.w.path("vd-root.sock"), user="")
        vd.settings.pop("group")
        self.addCleanup(vd.close)
        with self.assertRaises(RuntimeError):
            vd.start(timeout=5)
        self.assertIn("refusing to run as root", vd.log())
        self.assertFalse(os.path.exists(self.w.path("vd-root.sock")))

    def test_unknown_user_or_group(self):
        """A user or group that does not exist stops vmaild before it binds, naming the key."""
        for n, (key, value) in enumerate((("user", "no-such-user-x"), ("group", "no-such-group-x"),
                                          ("socket_owner", "no-such-user-y"),
                                          ("socket_group", "no-such-group-y"))):
            d = self.w.path("vd-id%d" % n)
            vd = world.Vmaild(d, self.pg.dsn, "unix:" + d + ".sock", **{key: value})
            self.addCleanup(vd.close)
            with self.assertRaises(RuntimeError):
                vd.start(timeout=5)
            self.assertIn('%s: unknown %s "%s"' % (key, "user" if "user" in value else "group", value),
                          vd.log())
            self.assertFalse(os.path.exists(d + ".sock"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
