"""End-to-end: vmaild's policy service (quota R6, suspension R9, sender ownership).

Run as root after building:
    VMAIL_BUILD_DIR=build python3 -m unittest -v tests/e2e/test_policy_postfix.py

PostfixPolicyTest runs a real Postfix 3.7 with contrib/postfix/main.cf.vmaild as
shipped (socketmap and policy sockets in the private queue directory, chrooted
smtpd); only the LMTP destination is a socket nobody listens on, so accepted mail
stays queued.  Usage is set directly in PostgreSQL (vmail.quota_set,
vmail.usage_set_files) the way Dovecot and the files cron job would.  Two vmaild
processes serve the two sockets so that the policy one can lose its database
(a reload to a dead connection string) while the maps keep working.

PolicyWireTest talks the policy protocol directly: framing, limits, states,
the sender check, and what happens when the database is down.
"""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402

PRIMARY = "platon.man.lublin.pl"
MB = 1024 * 1024

DATA_SQL = """
SELECT vmail.customer_add('acme', 'ACME');
SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{CRYPT}x', 10485760);
SELECT vmail.shell_add('acme', 'ewa', 2002, 2002, '/home/ewa', '{CRYPT}x', 10485760);
SELECT vmail.shell_add('acme', 'ola', 2003, 2003, '/home/ola', '{CRYPT}x', 10485760);
SELECT vmail.domain_add('acme', 'acme.lublin.pl');
SELECT vmail.domain_set_state('acme.lublin.pl', 'active');
SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl');
SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'jan', '{CRYPT}x', 5242880);
SELECT vmail.alias_add('info@acme.lublin.pl', ARRAY['jan@platon.man.lublin.pl'], true, 'jan');
SELECT vmail.alias_add('kontakt@acme.lublin.pl', ARRAY['biuro@acme.lublin.pl'], true, 'jan');
SELECT vmail.alias_add('ewa@acme.lublin.pl', ARRAY['ewa@platon.man.lublin.pl'], true, 'ewa');
SELECT vmail.alias_add('zespol@acme.lublin.pl',
       ARRAY['ewa@platon.man.lublin.pl', 'jan@platon.man.lublin.pl'], false, NULL);
SELECT vmail.shell_set('ola', 'state', 'suspended');
-- pg.sh runs with synchronous_commit = off: make the data survive pg.sh kill.
CHECKPOINT;
"""

JAN_ADDRESSES = ["jan@" + PRIMARY, "Jan+tag@" + PRIMARY.upper(), "info@acme.lublin.pl",
                 "kontakt@acme.lublin.pl", "biuro@acme.lublin.pl", "zespol@acme.lublin.pl"]

SKIP = world.missing_prerequisites()


def contrib_main_cf(lmtp_socket):
    """contrib/postfix/main.cf.vmaild with the LMTP destination pointed at lmtp_socket."""
    with open(os.path.join(world.REPO, "contrib", "postfix", "main.cf.vmaild")) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^virtual_transport = .*$", "virtual_transport = lmtp:unix:" +
                      lmtp_socket, text)
    assert n == 1, "contrib main.cf lost its virtual_transport line"
    for line in ("smtpd_recipient_restrictions = check_policy_service unix:private/vmaild-policy",
                 "smtpd_end_of_data_restrictions = check_policy_service "
                 "unix:private/vmaild-policy"):
        assert line in text, "contrib main.cf lost: " + line
    return text


def message(size, to="jan@" + PRIMARY):
    """A message of about size bytes."""
    head = "From: tester@example.org\r\nTo: %s\r\nSubject: policy test\r\n\r\n" % to
    line = "x" * 76 + "\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode()


class PolicyClient:
    """The policy protocol from the Postfix side: attributes, empty line, one action."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    @staticmethod
    def encode(**attrs):
        base = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
                "protocol_name": "ESMTP", "client_address": "192.0.2.1",
                "client_name": "unknown", "helo_name": "client.example", "sender": "",
                "recipient": "", "recipient_count": "0", "queue_id": "", "instance": "1.1.1",
                "size": "0", "sasl_method": "", "sasl_username": "", "policy_context": ""}
        base.update(attrs)
        return b"".join(("%s=%s\n" % kv).encode() for kv in base.items()) + b"\n"

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection; had %r" % self.buf)
            self.buf += chunk
        block, _, self.buf = self.buf.partition(b"\n\n")
        lines = block.decode().split("\n")
        assert len(lines) == 1 and lines[0].startswith("action="), block
        return lines[0][len("action="):]

    def ask(self, **attrs):
        self.send(self.encode(**attrs))
        return self.reply()

    def at_eof(self, timeout=3.0):
        """True if the server closes without sending anything (more)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b"" and self.buf == b""

    def close(self):
        self.sock.close()


class UsageMixin:
    def set_usage(self, login, mail_bytes, files=None):
        sql = "SELECT vmail.quota_set('%s', %d, 1);" % (login, mail_bytes)
        if files is not None:
            sql += "SELECT vmail.usage_set_files('%s', %d);" % (login, files)
        self.pg.psql(sql)

    def reset_usage(self):
        self.pg.psql("DELETE FROM vmail.mailbox_usage;"
                     "SELECT vmail.usage_set_files(l, 0) FROM unnest(ARRAY['jan','ewa','ola']) l;")


@unittest.skipIf(SKIP, SKIP)
class PostfixPolicyTest(UsageMixin, unittest.TestCase):
    """RCPT and END-OF-MESSAGE answers through a real Postfix."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-policy")
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql(DATA_SQL)
            cls.pf = cls.w.postfix(contrib_main_cf(cls.w.path("nobody-listens-lmtp")),
                                   start=False)
            cls.maps = cls.w.vmaild(cls.pg.dsn, "unix:" + os.path.join(cls.pf.private, "vmaild"),
                                    socket_owner="postfix", socket_mode="0600")
            # The policy side on its own, so that its database can go away alone.
            cls.policy_socket = os.path.join(cls.pf.private, "vmaild-policy")
            cls.pol = world.Vmaild(cls.w.path("vmaild-policy"), cls.pg.dsn, "",
                                   policy_listen="unix:" + cls.policy_socket,
                                   socket_owner="postfix", socket_mode="0600",
                                   request_timeout="1s")
            cls.w._stack.enter_context(cls.pol)
            cls.pol.settings.pop("socketmap_listen")
            cls.pol.start()
            cls.pf.start()
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def setUp(self):
        self.reset_usage()

    def session(self):
        s = self.pf.smtp()
        self.addCleanup(s.close)
        code, msg = s.ehlo()
        self.assertEqual(code, 250, msg)
        return s

    def rcpt(self, address, size=None):
        s = self.session()
        code, msg = s.mail("tester@example.org", ["SIZE=%d" % size] if size is not None else [])
        self.assertEqual(code, 250, msg)
        code, msg = s.rcpt(address)
        return code, msg.decode(errors="replace")

    def assertRcpt(self, address, code, text=None, size=None):
        got, msg = self.rcpt(address, size)
        self.assertEqual(got, code, "RCPT TO:<%s>: %d %s\npolicy log tail:\n%s" % (
            address, got, msg, self.pol.log()[-3000:]))
        if text:
            self.assertRegex(msg, text, address)
        return msg

    def full(self, mailbox):
        return r"^4\.2\.2 <[^>]+>: Recipient address rejected: Mailbox %s is full$" % (
            re.escape(mailbox))

    def test_1_room_left_is_accepted(self):
        self.set_usage("jan", 9 * MB, files=0)
        for address in JAN_ADDRESSES + ["ewa@" + PRIMARY, "ewa@acme.lublin.pl"]:
            with self.subTest(address=address):
                self.assertRcpt(address, 250)

    def test_2_full_account_refused_at_rcpt_through_every_address(self):
        # jan's files plus his mailbox reach his 10 MiB disk limit exactly.
        self.set_usage("jan", 6 * MB, files=4 * MB)
        for address in JAN_ADDRESSES:
            with self.subTest(address=address):
                # Each names the mailbox that is full: jan's own, or his free account
                # (which lives inside jan's disk limit).
                mailbox = "biuro@acme.lublin.pl" if "biuro" in address or "kontakt" in address \
                    else "jan@" + PRIMARY
                self.assertRcpt(address, 452, self.full(mailbox))
        # Another shell account of the same customer still receives mail.
        self.assertRcpt("ewa@" + PRIMARY, 250)
        self.assertRcpt("ewa@acme.lublin.pl", 250)
        # Not ours: the policy has no opinion; relay control still refuses it.
        self.assertRcpt("someone@example.org", 554, r"^5\.7\.1 ")
        # After mail was deleted the same RCPTs are accepted again.
        self.set_usage("jan", 1 * MB)
        for address in JAN_ADDRESSES:
            with self.subTest(address=address, after="expunge"):
                self.assertRcpt(address, 250)

    def test_3_free_account_usage_counts_against_the_shell_account(self):
        # biuro's own quota is 5 MiB; 4 MiB in it plus 6 MiB of jan's mail fill jan's limit.
        self.set_usage("jan", 6 * MB)
        self.set_usage("biuro@acme.lublin.pl", 4 * MB)
        self.assertRcpt("jan@" + PRIMARY, 452, self.full("jan@" + PRIMARY))
        self.assertRcpt("biuro@acme.lublin.pl", 452, self.full("biuro@acme.lublin.pl"))
        # The free account's own quota alone.
        self.set_usage("jan", 0)
        self.set_usage("biuro@acme.lublin.pl", 5 * MB)
        self.assertRcpt("biuro@acme.lublin.pl", 452, self.full("biuro@acme.lublin.pl"))
        self.assertRcpt("kontakt@acme.lublin.pl", 452, self.full("biuro@acme.lublin.pl"))
        self.assertRcpt("info@acme.lublin.pl", 250)
        self.assertRcpt("jan@" + PRIMARY, 250)

    def test_4_announced_size(self):
        self.set_usage("jan", 9 * MB)
        self.assertRcpt("jan@" + PRIMARY, 250, size=MB // 2)
        self.assertRcpt("jan@" + PRIMARY, 452, self.full("jan@" + PRIMARY), size=2 * MB)
        self.assertRcpt("info@acme.lublin.pl", 452, self.full("jan@" + PRIMARY), size=2 * MB)
        self.assertRcpt("jan@" + PRIMARY, 250)   # no SIZE=: only "already full" refuses

    def test_5_end_of_message_checks_the_real_size(self):
        self.set_usage("jan", 10 * MB - 20000)
        s = self.session()
        self.assertEqual(s.mail("tester@example.org")[0], 250)
        self.assertEqual(s.rcpt("info@acme.lublin.pl")[0], 250)
        code, msg = s.data(message(60000, "info@acme.lublin.pl"))
        self.assertEqual(code, 452, msg)
        self.assertRegex(msg.decode(), r"^4\.2\.2 <END-OF-MESSAGE>: End-of-data rejected: "
                         r"Mailbox jan@%s is full$" % re.escape(PRIMARY))
        # A small one fits.
        s.rset()
        self.assertEqual(s.mail("tester@example.org")[0], 250)
        self.assertEqual(s.rcpt("info@acme.lublin.pl")[0], 250)
        code, msg = s.data(message(2000, "info@acme.lublin.pl"))
        self.assertEqual(code, 250, msg)
        # Several recipients: END-OF-MESSAGE carries none, so nothing is checked there
        # (each was checked at RCPT).
        s.rset()
        self.assertEqual(s.mail("tester@example.org")[0], 250)
        self.assertEqual(s.rcpt("info@acme.lublin.pl")[0], 250)
        self.assertEqual(s.rcpt("ewa@" + PRIMARY)[0], 250)
        code, msg = s.data(message(60000, "info@acme.lublin.pl"))
        self.assertEqual(code, 250, msg)
        self.assertIn("END-OF-MESSAGE", self.pol.log())

    def test_6_suspended_is_deferred(self):
        msg = self.assertRcpt("ola@" + PRIMARY, 450,
                              r"^4\.2\.1 <[^>]+>: Recipient address rejected: Mailbox ola@%s "
                              r"is disabled" % re.escape(PRIMARY))
        self.assertIn("try again later", msg)

    def test_7_database_down_defers_and_fail_open_accepts(self):
        # The policy's database goes away; the maps still answer.
        self.pol.settings["database"] = "host=/nonexistent-%d dbname=none" % os.getpid()
        self.pol.write_config()
        self.pol.reload()
        try:
            t0 = time.monotonic()
            self.assertRcpt("jan@" + PRIMARY, 450,
                            r"^4\.7\.1 <[^>]+>: Recipient address rejected: Temporary lookup "
                            r"failure")
            self.assertLess(time.monotonic() - t0, 8)
            self.pol.settings["policy_fail_open"] = "yes"
            self.pol.write_config()
            self.pol.reload()
            self.set_usage("jan", 10 * MB)   # would be refused, but nobody can tell
            self.assertRcpt("jan@" + PRIMARY, 250)
        finally:
            self.pol.settings["database"] = self.pg.dsn
            self.pol.settings.pop("policy_fail_open", None)
            self.pol.write_config()
            self.pol.reload()
        world.wait_for("the policy to see the database again",
                       lambda: self.rcpt("jan@" + PRIMARY)[0] == 452, timeout=30, interval=0.5)

    def test_8_bounce_code_is_configurable(self):
        self.set_usage("jan", 10 * MB)
        self.pol.settings["policy_full_action_code"] = "552"
        self.pol.write_config()
        self.pol.reload()
        try:
            self.assertRcpt("info@acme.lublin.pl", 552,
                            r"^5\.2\.2 <[^>]+>: Recipient address rejected: Mailbox jan@%s "
                            r"is full$" % re.escape(PRIMARY))
        finally:
            self.pol.settings.pop("policy_full_action_code")
            self.pol.write_config()
            self.pol.reload()
        self.assertRcpt("info@acme.lublin.pl", 452, self.full("jan@" + PRIMARY))

    def test_9_suspended_domain_is_deferred_never_refused(self):
        # A suspended domain stays hosted: its addresses, known or not, get a 4xx (the
        # sender's server retries), never the 554 of a domain that is not ours; once active
        # again, 250.  vmaild sees the change through its cache invalidation, so the first
        # answer that is not 250 is the one that counts.
        addresses = ["info@acme.lublin.pl", "biuro@acme.lublin.pl", "nobody@acme.lublin.pl",
                     "postmaster@acme.lublin.pl"]
        self.w.vmailctl("domain", "set", "acme.lublin.pl", "--state", "suspended")
        try:
            first = world.wait_for("the suspension to reach vmaild", lambda: (
                lambda r: r if r[0] != 250 else None)(self.rcpt(addresses[0])), timeout=30,
                interval=0.2)
            answers = [(addresses[0],) + first] + [(a,) + self.rcpt(a) for a in addresses[1:]]
            for address, code, msg in answers:
                with self.subTest(address=address):
                    self.assertTrue(400 <= code < 500, "RCPT TO:<%s>: %d %s" % (address, code, msg))
            # The maps on their own (a Postfix without the policy service): the domain is
            # still hosted, its addresses a temporary error ("not found" would bounce them).
            self.assertEqual(self.pf.postmap_q("acme.lublin.pl", "socketmap:unix:private/"
                                               "vmaild:domain")[:2], (0, "acme.lublin.pl"))
            for kind in ("alias", "mailbox", "sender"):
                rc, out, err = self.pf.postmap_q("biuro@acme.lublin.pl",
                                                 "socketmap:unix:private/vmaild:" + kind)
                self.assertEqual((rc, out), (1, ""), kind)
                self.assertIn("temporary error", err, kind)
            # the policy's own word, asked directly
            self.assertIn("Domain acme.lublin.pl is disabled", self.policy_action(
                "info@acme.lublin.pl"))
        finally:
            self.w.vmailctl("domain", "set", "acme.lublin.pl", "--state", "active")
        world.wait_for("the reactivation to reach vmaild",
                       lambda: self.rcpt(addresses[0])[0] == 250, timeout=30, interval=0.2)
        for address in addresses[:2]:
            self.assertRcpt(address, 250)
        # A deferral is an answer, not a database fault: no warning per lookup.
        self.assertNotIn("SQLSTATE VM451", self.maps.log())
        print("\n  suspended domain: %s" % "; ".join("%s %d %s" % a for a in answers),
              end="", flush=True)

    def policy_action(self, recipient):
        c = PolicyClient(self.policy_socket)
        self.addCleanup(c.close)
        return c.ask(recipient=recipient, sender="tester@example.org")


@unittest.skipIf(SKIP, SKIP)
class PolicyWireTest(UsageMixin, unittest.TestCase):
    """The policy protocol spoken directly."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-policy-wire")
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql(DATA_SQL)
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def setUp(self):
        self.reset_usage()

    def start(self, suffix="", **settings):
        name = "vd-" + self._testMethodName + suffix
        path = self.w.path(name + ".sock")
        vd = world.Vmaild(self.w.path(name), self.pg.dsn, "", policy_listen="unix:" + path,
                          socket_mode="0666", **settings)
        vd.settings.pop("socketmap_listen")
        self.addCleanup(vd.close)
        vd.start()
        return vd, path

    def client(self, path):
        c = PolicyClient(path)
        self.addCleanup(c.close)
        return c

    def test_many_requests_per_connection_and_states(self):
        vd, path = self.start()
        c = self.client(path)
        # Nothing is sent before a request.
        c.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            c.sock.recv(1)
        c.sock.settimeout(10)
        self.set_usage("jan", 10 * MB)
        full = "452 4.2.2 Mailbox jan@%s is full" % PRIMARY
        cases = [
            (dict(recipient="info@acme.lublin.pl"), full),
            (dict(recipient="ewa@acme.lublin.pl"), "DUNNO"),
            (dict(recipient="nobody@acme.lublin.pl"), "DUNNO"),
            (dict(recipient="someone@example.org"), "DUNNO"),
            (dict(recipient=""), "DUNNO"),
            (dict(recipient="ola@" + PRIMARY), "450 4.2.1 Mailbox ola@%s is disabled, try "
                                                "again later" % PRIMARY),
            (dict(protocol_state="END-OF-MESSAGE", recipient="info@acme.lublin.pl",
                  size="100"), full),
            (dict(protocol_state="END-OF-MESSAGE", recipient="", recipient_count="2",
                  size="100"), "DUNNO"),
            (dict(protocol_state="DATA", recipient="info@acme.lublin.pl"), "DUNNO"),
            (dict(protocol_state="CONNECT"), "DUNNO"),
            (dict(protocol_state="NEW-STATE-9", recipient="info@acme.lublin.pl"), "DUNNO"),
            (dict(recipient="x" * 2000 + "@acme.lublin.pl"), "DUNNO"),
            (dict(recipient="jan@" + PRIMARY, size="garbage"), full),
        ]
        for attrs, want in cases * 3:
            with self.subTest(attrs=attrs):
                self.assertEqual(c.ask(**attrs), want)
        # Pipelined in one write, answered in order.
        c.send(b"".join(PolicyClient.encode(**a) for a, _ in cases))
        for _, want in cases:
            self.assertEqual(c.reply(), want)

    def test_split_reads(self):
        vd, path = self.start()
        c = self.client(path)
        data = PolicyClient.encode(recipient="ewa@acme.lublin.pl") * 2
        for i in range(len(data)):
            c.send(data[i:i + 1])
            if i % 50 == 0:
                time.sleep(0.001)
        self.assertEqual(c.reply(), "DUNNO")
        self.assertEqual(c.reply(), "DUNNO")

    def test_garbage_and_limits_close_without_reply(self):
        vd, path = self.start()
        junk = [
            b"no equals sign\n\n",
            b"=value\n\n",
            b"request=smtpd_access_policy\nrecipient=a\0b\n\n",
            b"request=smtpd_access_policy\nx=" + b"y" * 5000 + b"\n\n",       # line too long
            b"".join(b"a%d=1\n" % i for i in range(100)) + b"\n",             # too many
            b"request=smtpd_access_policy\n" + b"".join(b"n%d=%s\n" % (i, b"v" * 1000)
                                                         for i in range(40)) + b"\n",
            b"request=something_else\nrecipient=jan@%s\n\n" % PRIMARY.encode(),
            b"\n",                                                             # no request=
        ]
        for data in junk:
            with self.subTest(data=data[:40]):
                c = self.client(path)
                c.send(data)
                self.assertTrue(c.at_eof())
        # A good request after a good one, then garbage: the first is answered.
        c = self.client(path)
        c.send(PolicyClient.encode(recipient="ewa@acme.lublin.pl") + b"garbage\n\n")
        self.assertEqual(c.reply(), "DUNNO")
        self.assertTrue(c.at_eof())
        self.assertIn("malformed request", vd.log())
        self.assertIsNone(vd.proc.poll())

    def test_sender_check(self):
        vd, path = self.start(policy_check_sender="yes")
        c = self.client(path)
        ok = [("jan", "jan@" + PRIMARY), ("JAN", "Jan@" + PRIMARY), ("jan", "info@acme.lublin.pl"),
              ("jan", "info+tag@acme.lublin.pl"), ("jan", "biuro@acme.lublin.pl"),
              ("biuro@acme.lublin.pl", "biuro@acme.lublin.pl"),
              ("biuro@acme.lublin.pl", "kontakt@acme.lublin.pl"), ("ewa", "ewa@acme.lublin.pl")]
        for login, sender in ok:
            with self.subTest(login=login, sender=sender):
                self.assertEqual(c.ask(sasl_username=login, sender=sender,
                                       recipient="someone@example.org"), "DUNNO")
        bad = [("jan", "ewa@acme.lublin.pl"), ("ewa", "info@acme.lublin.pl"),
               ("biuro@acme.lublin.pl", "jan@" + PRIMARY), ("jan", "stranger@example.org"),
               ("jan", "nobody@acme.lublin.pl")]
        for login, sender in bad:
            with self.subTest(login=login, sender=sender):
                self.assertEqual(c.ask(sasl_username=login, sender=sender,
                                       recipient="someone@example.org"),
                                 "553 5.7.1 Sender address <%s> not owned by user %s"
                                 % (sender, login))
        # MAIL state (a policy in smtpd_sender_restrictions without delay) checks it too.
        self.assertEqual(c.ask(protocol_state="MAIL", sasl_username="jan",
                               sender="ewa@acme.lublin.pl"),
                         "553 5.7.1 Sender address <ewa@acme.lublin.pl> not owned by user jan")
        # Unauthenticated clients and the null sender are not checked.
        self.assertEqual(c.ask(sender="ewa@acme.lublin.pl", recipient="someone@example.org"),
                         "DUNNO")
        self.assertEqual(c.ask(sasl_username="jan", sender="", recipient="x@example.org"),
                         "DUNNO")
        # Owned sender, full recipient: the quota check still runs.
        self.set_usage("jan", 10 * MB)
        self.assertEqual(c.ask(sasl_username="ewa", sender="ewa@acme.lublin.pl",
                               recipient="info@acme.lublin.pl"),
                         "452 4.2.2 Mailbox jan@%s is full" % PRIMARY)
        # Off by default.
        vd2, path2 = self.start("-default")
        self.assertEqual(self.client(path2).ask(sasl_username="jan", sender="ewa@acme.lublin.pl",
                                                recipient="someone@example.org"), "DUNNO")

    def test_database_down(self):
        vd, path = self.start(request_timeout="1s", policy_check_sender="yes")
        c = self.client(path)
        self.assertEqual(c.ask(recipient="ewa@acme.lublin.pl"), "DUNNO")
        self.pg.kill()
        try:
            defer = "DEFER_IF_PERMIT Temporary lookup failure, try again later"
            t0 = time.monotonic()
            self.assertEqual(c.ask(recipient="never-seen-1@acme.lublin.pl"), defer)
            self.assertEqual(c.ask(sasl_username="jan", sender="jan@" + PRIMARY,
                                   recipient="never-seen-2@example.org"), defer)
            self.assertLess(time.monotonic() - t0, 6)
            vd.settings["policy_fail_open"] = "yes"
            vd.write_config()
            vd.reload()
            self.assertEqual(c.ask(recipient="never-seen-3@acme.lublin.pl"), "DUNNO")
        finally:
            self.pg.start()
        world.wait_for("answers again",
                       lambda: c.ask(recipient="ola@" + PRIMARY).startswith("450 "),
                       timeout=30, interval=0.5)

    def test_max_connections(self):
        vd, path = self.start(max_connections=1)
        a = self.client(path)
        self.assertEqual(a.ask(recipient="ewa@acme.lublin.pl"), "DUNNO")
        b = self.client(path)
        self.assertEqual(b.ask(recipient="ewa@acme.lublin.pl"),
                         "DEFER_IF_PERMIT Temporary lookup failure, try again later")
        self.assertTrue(b.at_eof())

    def test_client_gone_while_waiting(self):
        # Requests in flight when the client leaves are dropped without harm.
        vd, path = self.start(request_timeout="2s")
        self.pg.kill()
        try:
            for i in range(20):
                c = PolicyClient(path)
                c.send(PolicyClient.encode(recipient="gone-%d@acme.lublin.pl" % i,
                                           sasl_username="jan", sender="jan@" + PRIMARY) * 3)
                c.close()
            time.sleep(0.5)
        finally:
            self.pg.start()
        c = self.client(path)
        world.wait_for("answers again",
                       lambda: c.ask(recipient="ewa@acme.lublin.pl") == "DUNNO",
                       timeout=30, interval=0.5)
        self.assertIsNone(vd.proc.poll())
        self.assertEqual(vd.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
