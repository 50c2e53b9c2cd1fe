"""End-to-end: one user's out-of-range quota commits fail alone, not the batch they share.

Run as root after building:  python3 tests/pyrun.py tests/e2e/test_dict_quota_batch.py

vmaild's quota dict socket is open to every shell account's uid, and the commits of all of
them that arrive while a batch is in the database share the next batch, one SQL statement.
Here three local users (their connections made by forked children that take the user's uid
before connect(), so that SO_PEERCRED names them) send commits that land in one batch:
qa and qb ordinary ones, qp ("poisoned") increments that push its counters past the bounds
(±2^53 bytes, ±2^31 messages) and values beyond them.  qp's commits answer F naming the key
and the bound, and leave its counters alone; qa's and qb's are applied.

The batch is made deterministic by a row lock: a separate SQL session locks the counter of
a fourth account, a trusted commit to that counter holds the first batch in the database,
the users' commits queue behind it (each seen in vmaild's debug log), then the lock goes.
"""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import dictclient  # noqa: E402
import world  # noqa: E402

SKIP = world.missing_prerequisites()

UIDS = {"qa": 61001, "qb": 61002, "qp": 61003, "qlock": 61004}
BYTES_BOUND = 2 ** 53
MESSAGES_BOUND = 2 ** 31


def connect_as(uid, path):
    """A dict quota client whose socket was connected by a process running as uid."""
    return dictclient.connect_as(uid, path, "quota")


@unittest.skipIf(SKIP, SKIP)
class QuotaBatchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = world.World()
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql("SELECT vmail.customer_add('acme');\n" + "".join(
                "SELECT vmail.shell_add('acme', '%s', %d, %d, '/home/%s', NULL, 1073741824);\n"
                % (login, uid, uid, login) for login, uid in UIDS.items()))
            cls.sock = cls.w.path("dict-quota")
            cls.vd = cls.w.vmaild(cls.pg.dsn, "", dict_quota_listen="unix:" + cls.sock,
                                  request_timeout="60s")
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def usage(self, login):
        out = self.pg.psql("SELECT u.bytes || ' ' || u.messages FROM vmail.mailbox_usage u "
                           "JOIN vmail.shell_account s ON s.id = u.shell_account_id "
                           "WHERE s.login = '%s'" % login).strip()
        return tuple(int(x) for x in out.split()) if out else None

    def send(self, c, login, *ops):
        """c.begin(), then wait until vmaild has read the commit (queued or answered by then)."""
        start = len(self.vd.log())
        t = c.begin(login, *ops)
        mark = "commit %d of %s:" % (t, login)
        world.wait_for(mark, lambda: mark in self.vd.log()[start:], timeout=20)
        return t

    def test_hello_name_cannot_forge_log_lines(self):
        # the dict protocol's \001n and \001r escapes decode to LF and CR inside the name
        marker = "forged-d1c7"
        c = dictclient.Client(self.sock, "x\001nvmaild[notice]: %s\001rz" % marker)
        with self.assertRaises(EOFError):  # an unknown dict name: refused and closed
            c.reply()
        world.wait_for(marker, lambda: marker in self.vd.log(), timeout=20)
        lines = [l for l in self.vd.log().splitlines() if marker in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('dict "x\\x0avmaild[notice]: %s\\x0dz" is not served' % marker, lines[0])

    def test_poisoned_commits_fail_alone(self):
        # Counters before the batch: qp's at the edge of both bounds (allowed), qb's small.
        for login, storage, messages in (("qa", 1000, 1), ("qb", 100, 1),
                                         ("qp", BYTES_BOUND - 5, MESSAGES_BOUND - 1),
                                         ("qlock", 0, 0)):
            with connect_as(UIDS[login], self.sock) as c:
                r = c.commit(login, "S{t}\tpriv/quota/storage\t%d" % storage,
                             "S{t}\tpriv/quota/messages\t%d" % messages)
                self.assertEqual(r, "O1", login)
        self.assertEqual(self.usage("qp"), (BYTES_BOUND - 5, MESSAGES_BOUND - 1))

        a = connect_as(UIDS["qa"], self.sock)
        b = connect_as(UIDS["qb"], self.sock)
        p = connect_as(UIDS["qp"], self.sock)
        root = dictclient.Client(self.sock, "quota")  # trusted: root
        holder = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                                   self.pg.dsn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            holder.stdin.write("BEGIN;\nSELECT 'locked' FROM vmail.mailbox_usage u "
                               "JOIN vmail.shell_account s ON s.id = u.shell_account_id "
                               "WHERE s.login = 'qlock' FOR UPDATE OF u;\n")
            holder.stdin.flush()
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            root.begin("qlock", "A{t}\tpriv/quota/storage\t1")
            world.wait_for("the first batch waiting for the row lock", lambda: self.pg.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE '%dict_commit%'").strip() == "1", timeout=20)
            ta = self.send(a, "qa", "A{t}\tpriv/quota/storage\t500",
                           "A{t}\tpriv/quota/messages\t1")
            p1 = self.send(p, "qp", "A{t}\tpriv/quota/storage\t10")
            p2 = self.send(p, "qp", "A{t}\tpriv/quota/messages\t5")
            tb = self.send(b, "qb", "A{t}\tpriv/quota/storage\t-300",
                           "A{t}\tpriv/quota/messages\t-2")
            p3 = self.send(p, "qp", "A{t}\tpriv/quota/storage\t9223372036854775000")
            p4 = self.send(p, "qp", "S{t}\tpriv/quota/messages\t%d" % (MESSAGES_BOUND + 1))
            holder.stdin.write("COMMIT;\n")
            holder.stdin.close()
            holder.wait(timeout=30)
            self.assertEqual(root.reply(), "O1")
            got = {"qa": [a.reply()], "qb": [b.reply()],
                   "qp": [p.reply() for _ in (p1, p2, p3, p4)]}
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait()
            for c in (a, b, p, root):
                c.close()
        print("\n  replies: %s" % got)
        self.assertEqual(got["qa"], ["O%d" % ta])
        self.assertEqual(got["qb"], ["O%d" % tb])
        self.assertEqual(got["qp"], [
            "F%d\tpriv/quota/storage: result would be outside -2^53..2^53" % p1,
            "F%d\tpriv/quota/messages: result would be outside -2^31..2^31" % p2,
            "F%d\tpriv/quota/storage: value outside -2^53..2^53" % p3,
            "F%d\tpriv/quota/messages: value outside -2^31..2^31" % p4])
        self.assertEqual(self.usage("qa"), (1500, 2))
        self.assertEqual(self.usage("qb"), (-200, -1), "negative results within the bounds stay")
        self.assertEqual(self.usage("qp"), (BYTES_BOUND - 5, MESSAGES_BOUND - 1))
        # The commits that reached the database shared one batch: qa, qp's two, qb.
        self.assertIn("dict: batch of 4 commits: committed", self.vd.log())

    def test_bounds_themselves_are_allowed(self):
        """±2^53 bytes and ±2^31 messages are inside; a counter may sit on them."""
        with connect_as(UIDS["qa"], self.sock) as c:
            self.assertRegex(c.commit("qa", "S{t}\tpriv/quota/storage\t%d" % -BYTES_BOUND,
                                      "S{t}\tpriv/quota/messages\t%d" % MESSAGES_BOUND), "^O")
            self.assertEqual(self.usage("qa"), (-BYTES_BOUND, MESSAGES_BOUND))
            for _ in range(2):
                self.assertRegex(c.commit("qa", "A{t}\tpriv/quota/storage\t%d" % BYTES_BOUND,
                                          "A{t}\tpriv/quota/messages\t%d" % -MESSAGES_BOUND),
                                 "^O")
            self.assertEqual(self.usage("qa"), (BYTES_BOUND, -MESSAGES_BOUND))
            self.assertRegex(c.commit("qa", "A{t}\tpriv/quota/storage\t1"), "^F")
            self.assertEqual(self.usage("qa"), (BYTES_BOUND, -MESSAGES_BOUND))


if __name__ == "__main__":
    unittest.main()
