"""End-to-end: a vmaild restart loses no quota update (SIGTERM drains, then the next serves).

Run as root after building:  python3 tests/pyrun.py tests/e2e/test_restart_drain.py

Dovecot's quota plugin sends a transaction (B, A..., C) and reads only the commit's answer;
a vmaild that closed the connection between B and C made the commit fail with "Broken
pipe - Quota is now desynced" although the message was stored.  Here vmaild runs the way
the shipped socket units start it: the listening socket is bound by the test (standing in
for systemd, which keeps it across restarts) and handed over through tests/lib/sd_launch.py
--fd.  Every step waits for a reply or a log line, never for time to pass.
"""

import os
import pwd
import signal
import socket
import sys
import time
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import dictclient  # noqa: E402
import world  # noqa: E402

SKIP = world.missing_prerequisites()
LAUNCH = os.path.join(world.REPO, "tests", "lib", "sd_launch.py")


@unittest.skipIf(SKIP, SKIP)
class RestartDrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-drain")
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql("SELECT vmail.customer_add('acme');\n" + "".join(
                "SELECT vmail.shell_add('acme', '%s', %d, %d, '/home/%s', NULL, 1073741824);\n"
                % (login, uid, uid, login) for login, uid in (("qa", 62001), ("qb", 62002), ("qc", 62003),
                                     ("qd", 62004), ("qe", 62005))))
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def setUp(self):
        # The socket unit's socket: it outlives every vmaild of the test.
        self.path = self.w.path("dict-quota-" + self._testMethodName)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        os.chmod(self.path, 0o666)
        self.listener.listen(64)
        self.addCleanup(self.listener.close)
        self.runs = 0

    def vmaild(self, **settings):
        """A vmaild on the held socket, started like vmaild.service (as nobody)."""
        self.runs += 1
        fd = self.listener.fileno()
        vd = world.Vmaild(self.w.path("vmaild-%s-%d" % (self._testMethodName, self.runs)),
                          self.pg.dsn, "", dict_quota_listen="systemd:dict_quota",
                          wrapper=[LAUNCH, "--user", "nobody", "--fd", "dict_quota=%d" % fd,
                                   "--"], pass_fds=(fd,), **settings)
        self.addCleanup(vd.close)
        return vd.start()

    def usage(self, login):
        out = self.pg.psql("SELECT u.bytes || ' ' || u.messages FROM vmail.mailbox_usage u "
                           "JOIN vmail.shell_account s ON s.id = u.shell_account_id "
                           "WHERE s.login = '%s'" % login).strip()
        return tuple(int(x) for x in out.split()) if out else None

    def recount_listed(self, state, login):
        """The recount list entries of login: the state file's and the database's."""
        try:
            with open(os.path.join(state, "usage-recount")) as f:
                kept = f.read().splitlines()
        except FileNotFoundError:
            kept = []
        rows = self.pg.psql("SELECT reason || ' ' || login FROM vmail.usage_recount "
                            "WHERE login = '%s'" % login)
        return sorted(set(l for l in kept + rows.strip().splitlines()
                          if l.endswith(" " + login)))

    def state_dir(self):
        state = self.w.path("state-" + self._testMethodName)
        os.mkdir(state, 0o700)
        nobody = pwd.getpwnam("nobody")
        os.chown(state, nobody.pw_uid, nobody.pw_gid)
        return state

    def client(self):
        c = dictclient.Client(self.path, "quota", timeout=30)  # root: trusted
        self.addCleanup(c.close)
        return c

    def open_transaction(self, c, login, tid, nbytes):
        """B and A of one quota update, as Dovecot sends them before its C; returns once
        vmaild has read them (the lookup behind them on the same connection answered)."""
        c.send("B%d\t%s" % (tid, login))
        c.send("A%d\tpriv/quota/storage\t%d" % (tid, nbytes))
        c.send("A%d\tpriv/quota/messages\t1" % tid)
        self.assertRegex(c.storage(login), r"^[ON]")  # N: no counter yet

    def sigterm(self, vd):
        start = len(vd.log())
        vd.proc.send_signal(signal.SIGTERM)
        world.wait_for("vmaild draining", lambda: "SIGTERM: stopping" in vd.log()[start:],
                       timeout=20)

    def test_commit_after_sigterm_is_applied_and_next_vmaild_serves(self):
        vd = self.vmaild()
        c = self.client()
        self.assertEqual(c.commit("qa", "S{t}\tpriv/quota/storage\t1000",
                                  "S{t}\tpriv/quota/messages\t1"), "O1")
        idle = self.client()
        self.assertEqual(idle.storage("qa"), "O1000")
        self.open_transaction(c, "qa", 2, 500)

        self.sigterm(vd)
        # An idle connection is closed (once its lookup's commit grace is over): its client
        # reconnects (to the next vmaild).
        with self.assertRaises(EOFError):
            idle.reply()
        # A client arriving during the drain waits in the socket's backlog.
        late = self.client()
        late.send("Lpriv/quota/messages\tqa")
        # The open transaction is still served: the commit is answered and applied.
        c.send("C2")
        reply = c.reply()
        print("\n  commit sent after SIGTERM: %r, usage %r" % (reply, self.usage("qa")))
        self.assertEqual(reply, "O2")
        self.assertEqual(self.usage("qa"), (1500, 2))
        c.close()  # the last busy connection: vmaild exits
        self.assertEqual(vd.proc.wait(timeout=20), 0)
        log = vd.log()
        self.assertIn("all connections answered and closed", log)
        self.assertNotIn("reached: closing", log)

        # The restarted vmaild takes the waiting connection from the same socket.
        vd2 = self.vmaild()
        self.assertEqual(late.reply(), "O2")
        self.assertIn("connected", vd2.log())

    def test_drain_ends_at_shutdown_timeout(self):
        vd = self.vmaild(shutdown_timeout="1s")
        c = self.client()
        self.assertEqual(c.commit("qb", "S{t}\tpriv/quota/storage\t70",
                                  "S{t}\tpriv/quota/messages\t7"), "O1")
        self.open_transaction(c, "qb", 2, 30)  # never committed
        self.sigterm(vd)
        self.assertEqual(vd.proc.wait(timeout=20), 0)
        with self.assertRaises(EOFError):
            c.reply()
        log = vd.log()
        print("\n  " + "\n  ".join(l for l in log.splitlines() if "discarded" in l or "reached" in l))
        self.assertIn("shutdown_timeout (1000 ms) reached: closing 1 connection(s) still busy "
                      "(dict_quota 1)", log)
        self.assertIn("1 open transaction(s) discarded", log)
        self.assertEqual(self.usage("qb"), (70, 7), "an uncommitted transaction changes nothing")

    def test_pipelining_client_does_not_hold_the_drain(self):
        """A client that writes lookups without pause: vmaild answers what it had read (and
        what was sent when the drain began), then closes, long before shutdown_timeout."""
        vd = self.vmaild(shutdown_timeout="60s")
        c = self.client()
        self.assertRegex(c.storage("qa"), r"^[ON]")
        sent = [0]
        replies = []
        first = threading.Event()

        def writer():
            try:
                while True:
                    c.send("Lpriv/quota/storage\tqa")
                    sent[0] += 1
            except OSError:
                pass  # vmaild closed the connection

        def reader():
            try:
                while True:
                    replies.append(c.reply())
                    first.set()
            except (EOFError, OSError):
                pass

        threads = [threading.Thread(target=f, daemon=True) for f in (writer, reader)]
        for t in threads:
            t.start()
        self.assertTrue(first.wait(20), "no answer to the pipelined lookups")
        self.sigterm(vd)
        # Bounded well under shutdown_timeout (60 s): a drain held by the client fails here.
        self.assertEqual(vd.proc.wait(timeout=20), 0)
        for t in threads:
            t.join(20)
        log = vd.log()
        print("\n  lookups sent %d, answered %d before the close" % (sent[0], len(replies)))
        self.assertIn("all connections answered and closed", log)
        self.assertNotIn("reached: closing", log)
        self.assertLess(len(replies), sent[0])
        self.assertEqual([r for r in replies if not r.startswith(("O", "N"))], [])

    def test_commit_after_lookup_is_applied(self):
        """Dovecot's quota update: a counter lookup, the save, then B/A/C on the same
        connection a few ms later.  A stop in between must wait for that commit."""
        state = self.state_dir()
        # A long grace: the commit below must not depend on how fast a loaded machine is.
        vd = self.vmaild(shutdown_timeout="60s", shutdown_commit_grace="30s",
                         state_directory=state)
        c = self.client()
        self.assertEqual(c.commit("qc", "S{t}\tpriv/quota/storage\t1000",
                                  "S{t}\tpriv/quota/messages\t1"), "O1")
        self.assertEqual(c.storage("qc"), "O1000")
        self.sigterm(vd)
        try:
            reply = c.commit("qc", "A{t}\tpriv/quota/storage\t300",
                             "A{t}\tpriv/quota/messages\t1")
        except (EOFError, OSError) as e:
            reply = repr(e)
        print("\n  commit after lookup + SIGTERM: %r, usage %r" % (reply, self.usage("qc")))
        self.assertEqual(reply, "O2")
        self.assertEqual(self.usage("qc"), (1300, 2))
        self.assertEqual(vd.proc.wait(timeout=20), 0)
        log = vd.log()
        self.assertIn("all connections answered and closed", log)
        self.assertNotIn("reached: closing", log)
        self.assertEqual(self.recount_listed(state, "qc"), [], "a commit that was applied")

    def test_lookup_without_commit_is_listed(self):
        """A lookup whose commit never comes (an IMAP GETQUOTAROOT, or a save that stalled):
        the stop waits only the grace, far below shutdown_timeout, and lists the login in
        case a commit was coming."""
        state = self.state_dir()
        vd = self.vmaild(shutdown_timeout="60s", state_directory=state)
        c = self.client()
        self.assertRegex(c.storage("qd"), r"^[ON]")
        self.sigterm(vd)
        # Bounded well under shutdown_timeout (60 s): a drain held to it fails here.
        self.assertEqual(vd.proc.wait(timeout=20), 0)
        with self.assertRaises(EOFError):
            c.reply()
        log = vd.log()
        self.assertIn("all connections answered and closed", log)
        self.assertNotIn("reached: closing", log)
        listed = self.recount_listed(state, "qd")
        print("\n  listed after the drain: %r" % listed)
        self.assertEqual(listed, ["commit-closed qd"])

    def test_each_lookup_restarts_the_grace(self):
        """A GETQUOTAROOT, then a save's lookup later: the save's commit gets the whole grace
        from its own lookup, not what was left of the first one's."""
        state = self.state_dir()
        # Wide margins on both sides (a loaded machine): grace 10 s; the second lookup 6 s
        # after the first; the commit 6 s after the stop, i.e. 2 s after the first lookup's
        # grace would have ended and 4 s before the second one's ends.
        vd = self.vmaild(shutdown_timeout="60s", shutdown_commit_grace="10s",
                         state_directory=state)
        c = self.client()
        self.assertEqual(c.commit("qe", "S{t}\tpriv/quota/storage\t1000",
                                  "S{t}\tpriv/quota/messages\t1"), "O1")
        self.assertEqual(c.storage("qe"), "O1000")
        time.sleep(6)
        self.assertEqual(c.storage("qe"), "O1000")
        self.sigterm(vd)
        time.sleep(6)
        try:
            reply = c.commit("qe", "A{t}\tpriv/quota/storage\t300",
                             "A{t}\tpriv/quota/messages\t1")
        except (EOFError, OSError) as e:
            reply = repr(e)
        print("\n  commit 12 s after the first lookup, 6 s after the second: %r" % reply)
        self.assertEqual(reply, "O2")
        self.assertEqual(self.usage("qe"), (1300, 2))
        self.assertEqual(vd.proc.wait(timeout=20), 0)
        self.assertEqual(self.recount_listed(state, "qe"), [], "a commit that was applied")

    def test_second_sigterm_ends_the_drain(self):
        vd = self.vmaild()
        c = self.client()
        self.open_transaction(c, "qb", 1, 10)
        self.sigterm(vd)
        vd.proc.send_signal(signal.SIGTERM)
        self.assertEqual(vd.proc.wait(timeout=20), 0)
        self.assertIn("SIGTERM again: stopping now", vd.log())
        with self.assertRaises(EOFError):
            c.reply()


if __name__ == "__main__":
    unittest.main()
