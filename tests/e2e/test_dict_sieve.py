"""End-to-end: Pigeonhole's dict script storage served by vmaild's dict service.

Run as root after building:  python3 tests/pyrun.py tests/e2e/test_dict_sieve.py

Pigeonhole (sieve_before = dict:proxy:...:sieve;name=vmail) connects with the dict name
"sieve" and asks two keys per delivery on the user's private namespace:
priv/sieve/name/vmail (the data id: the SHA-256 hex of the script; a mailbox without rules
has a script that does nothing, since Pigeonhole 2.4.1 defers mail whose "before" script is
not found, and an unknown user is N) and
priv/sieve/data/<id> (the script text, several lines, so the protocol's escapes carry its
newlines).  The rules are set with the SQL functions vmailctl and the panel call
(vacation_set, forward_add, ...).

A dict client does what Pigeonhole does, as root (trusted) and from forked
children that take a mailbox's uid before connect() (SO_PEERCRED then names them): a uid
reads only the scripts of mailboxes whose mail runs under it.  Answers never come from
vmaild's cache: a changed rule gives a new id at the very next lookup, and with PostgreSQL
stopped the name lookup is F, never N (N would deliver without the forwarding).  Its world:

  customer acme, domain acme.lublin.pl
    shell account sa (uid 61101): out-of-office on
    shell account sb (uid 61102): no rules
    shell account sc (uid 61103): out-of-office, changed by the test
    mail account biuro@acme.lublin.pl of sa: forwarding with a copy kept

Deliveries through the real client (Dovecot's LMTP with Pigeonhole): test_sieve_delivery.py.
"""

import hashlib
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import dictclient  # noqa: E402
import world  # noqa: E402

SKIP = world.missing_prerequisites()

UIDS = {"sa": 61101, "sb": 61102, "sc": 61103}
NAME = "priv/sieve/name/vmail"
DATA = "priv/sieve/data/"
SUBJECT = "Away until Monday 7c1e"
BODY = "I am away.\nYour mail waits for me.\n\n.Back on Monday.\n"
FORWARD_TO = "jan@example.org"


def sql_text(s):
    """s as an SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


@unittest.skipIf(SKIP, SKIP)
class DictSieveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = world.World()
        try:
            cls.pg = cls.w.postgres()
            ctl = cls.w.vmailctl
            ctl("customer", "add", "acme")
            ctl("domain", "add", "acme", "acme.lublin.pl")
            cls.pg.psql("SELECT vmail.domain_set_state('acme.lublin.pl', 'active')")
            for login, uid in UIDS.items():
                ctl("--password-stdin", "shell", "add", "acme", login, "--disk-limit", "10M",
                    "--uid", str(uid), "--gid", str(uid), "--home", "/home/" + login,
                    "--mail-domain", "acme.lublin.pl", stdin="Pass-%s-1\n" % login)
            ctl("--password-stdin", "mailbox", "add", "biuro@acme.lublin.pl", "--owner", "sa",
                "--quota", "1M", stdin="Biuro-pass-1\n")
            cls.vacation("sa", SUBJECT)
            cls.vacation("sc", "First subject")
            cls.pg.psql("SELECT vmail.forward_add('biuro@acme.lublin.pl', %s, true)"
                        % sql_text(FORWARD_TO))
            cls.quota_sock = cls.w.path("dict-quota")
            cls.auth_sock = cls.w.path("dict-auth")
            cls.vd = cls.w.vmaild(cls.pg.dsn, "", dict_quota_listen="unix:" + cls.quota_sock,
                                  dict_listen="unix:" + cls.auth_sock, request_timeout="2s")
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    @classmethod
    def vacation(cls, address, subject):
        cls.pg.psql("SELECT vmail.vacation_set(%s, %s, %s, NULL, NULL, NULL, NULL)"
                    % (sql_text(address), sql_text(subject), sql_text(BODY)))

    def client(self, uid=None, sock=None):
        """A Pigeonhole-like client on the quota socket: as root (trusted) or as uid."""
        path = sock or self.quota_sock
        if uid is None:
            return dictclient.Client(path, "sieve")
        return dictclient.connect_as(uid, path, "sieve")

    def script_id(self, c, user):
        """The name lookup's data id, checked to be 64 hex digits."""
        reply = c.lookup(NAME, user)
        self.assertRegex(reply, r"^O[0-9a-f]{64}$", "name lookup of %s" % user)
        return reply[1:]

    def script(self, c, user, data_id):
        """The script of data_id, unescaped, checked to be the text the id was made of."""
        reply = c.lookup(DATA + data_id, user)
        self.assertTrue(reply.startswith("O"), "data lookup of %s: %r" % (user, reply))
        text = dictclient.unescape(reply[1:])
        self.assertEqual(hashlib.sha256(text.encode()).hexdigest(), data_id,
                         "the script did not arrive as it left the database")
        return text

    def test_name_then_data_gives_the_script(self):
        with self.client() as c:
            text = self.script(c, "sa", self.script_id(c, "sa"))
        self.assertIn("vacation", text)
        self.assertIn(SUBJECT, text)
        # Multi-line: the newlines travelled as \001n escapes and came back.
        self.assertGreater(text.count("\n"), 3, text)
        self.assertIn("\n..Back on Monday.\n", text)  # sieve_text's dot-stuffing survived

    def test_forwarding_is_in_the_script(self):
        with self.client() as c:
            text = self.script(c, "biuro@acme.lublin.pl", self.script_id(c, "biuro@acme.lublin.pl"))
        self.assertIn("redirect :copy", text)
        self.assertIn(FORWARD_TO, text)

    def test_mailbox_without_rules_has_a_script_that_does_nothing(self):
        with self.client() as c:
            text = self.script(c, "sb", self.script_id(c, "sb"))
            self.assertNotIn("vacation", text)
            self.assertNotIn("redirect", text)
            self.assertTrue(all(line.startswith("#") for line in text.splitlines()), text)
            sa_id = self.script_id(c, "sa")
            self.assertEqual(c.lookup(DATA + sa_id, "sb"), "N")  # another mailbox's id
            self.assertEqual(c.lookup(NAME, "nobody-here"), "N")  # an unknown user

    def test_wrong_id_and_other_keys_are_not_found(self):
        with self.client() as c:
            self.assertEqual(c.lookup(DATA + "0" * 64, "sa"), "N")
            self.assertEqual(c.lookup(DATA + "nonsense", "sa"), "N")
            self.assertEqual(c.lookup("priv/sieve/name/other", "sa"), "N")
            self.assertEqual(c.lookup("priv/quota/storage", "sa"), "N")  # not this dict's key

    def test_scripts_are_read_only(self):
        with self.client() as c:
            self.assertEqual(c.commit("sa", "S{t}\t%s\tx" % NAME), "F1\tthis dict is read-only")
            c.send("I0\t0\tpriv/sieve/\tsa")
            self.assertEqual(c.reply(), "")  # an empty listing
            self.script_id(c, "sa")  # still serving, in order

    def test_own_uid_reads_its_scripts(self):
        # biuro@ is sa's mail account: its mail runs under sa's uid too.
        with self.client(UIDS["sa"]) as c:
            self.script(c, "sa", self.script_id(c, "sa"))
            self.script_id(c, "biuro@acme.lublin.pl")

    def test_other_uid_is_refused(self):
        with self.client() as c:
            sa_id = self.script_id(c, "sa")
        start = len(self.vd.log())
        with self.client(UIDS["sb"]) as c:
            self.assertEqual(c.lookup(NAME, "sa"), "Fpermission denied")
            self.assertEqual(c.lookup(DATA + sa_id, "sa"), "Fpermission denied")
            self.assertEqual(c.lookup(NAME, "biuro@acme.lublin.pl"), "Fpermission denied")
            self.assertRegex(c.lookup(NAME, "sb"), r"^O[0-9a-f]{64}$")  # its own (no rules)
        mark = "refused: the Sieve scripts of sa to uid %d" % UIDS["sb"]
        world.wait_for(mark, lambda: mark in self.vd.log()[start:], timeout=10)
        # The log names who asked for whose rules, never what the rules say.
        self.assertNotIn(SUBJECT, self.vd.log())
        self.assertNotIn(FORWARD_TO, self.vd.log())

    def test_auth_listener_serves_root(self):
        with self.client(sock=self.auth_sock) as c:
            self.script(c, "sa", self.script_id(c, "sa"))

    def test_rule_change_applies_to_the_next_lookup(self):
        with self.client() as c:
            old = self.script_id(c, "sc")
            self.assertIn("First subject", self.script(c, "sc", old))
            self.vacation("sc", "Second subject")
            new = self.script_id(c, "sc")  # the same connection, the very next lookup
            self.assertNotEqual(new, old)
            text = self.script(c, "sc", new)
            self.assertIn("Second subject", text)
            self.assertNotIn("First subject", text)
            self.assertEqual(c.lookup(DATA + old, "sc"), "N")  # the old id is gone
            self.vacation("sc", "First subject")
            self.assertEqual(self.script_id(c, "sc"), old)  # the id is the text's, nothing else

    def test_zz_database_stopped_is_failure_never_not_found(self):
        # Last (by name): PostgreSQL is stopped and started again.
        with self.client() as c:
            data_id = self.script_id(c, "sa")
            self.script_id(c, "sb")
            self.pg.stop()
            try:
                for user in ("sa", "sb"):  # with rules and without: the same F
                    reply = c.lookup(NAME, user)
                    self.assertTrue(reply.startswith("F"), "name lookup of %s: %r" % (user, reply))
                reply = c.lookup(DATA + data_id, "sa")
                self.assertTrue(reply.startswith("F"), "data lookup: %r" % reply)
            finally:
                self.pg.start()
        # Back, the database answers again (once the pool has reconnected).
        def answered():
            try:
                with self.client() as c2:
                    return re.match(r"^O[0-9a-f]{64}$", c2.lookup(NAME, "sa"))
            except (OSError, EOFError):
                return None
        world.wait_for("the name lookup after the restart", answered, timeout=30, interval=0.5)


if __name__ == "__main__":
    unittest.main()
