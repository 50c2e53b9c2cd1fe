"""vmaild against a PostgreSQL primary and a streaming hot standby (docs/replication.md).

A primary (tests/world/pg.sh start) and a standby made from it with pg_basebackup -R
(pg.sh standby), each on its own unix socket.  vmaild gets the multi-host string

    database = host=STANDBY,PRIMARY ... target_session_attrs=prefer-standby

and derives the primary's string itself (target_session_attrs=read-write) for quota
writes and the cache's LISTEN connection.  The tests, in order:

  1. lookups are served by the standby (pg_stat_activity on each server);
  2. a change committed on the primary is seen through vmaild even though the standby
     applies WAL 1.5 s late (recovery_min_apply_delay) and the cache keeps answers for
     an hour: the invalidation is applied again once the standby has replayed it;
  3. failover: under a lookup load the primary is stopped and the standby promoted;
     lookups keep answering (never NOTFOUND), quota writes through the dict service
     resume on the new primary.  Counts are printed.

Run as root after building:
  VMAIL_BUILD_DIR=build python3 tests/pyrun.py tests/e2e/test_replication.py
"""

import os
import subprocess
import threading
import time
import unittest

import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import dictclient
import smclient
import world

DATA_SQL = """
SELECT vmail.customer_add('acme', 'ACME');
SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{CRYPT}x', 1073741824);
SELECT vmail.domain_add('acme', 'acme.lublin.pl');
SELECT vmail.domain_set_state('acme.lublin.pl', 'active');
SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl');
SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'jan', '{CRYPT}x', 104857600);
"""
QUOTA_USER = "biuro@acme.lublin.pl"
APPLY_DELAY_MS = 1500

SKIP = world.missing_prerequisites()


class Standby(world.Postgres):
    """A hot standby of primary_dir, via tests/world/pg.sh standby."""

    def __init__(self, dir, primary_dir):
        super().__init__(dir)
        self.primary_dir = primary_dir

    def start(self):
        out = subprocess.run([world.PG_SH, "standby", self.primary_dir, self.dir], check=True,
                             capture_output=True, text=True).stdout
        self.dsn = out.strip().splitlines()[-1]
        return self

    def promote(self):
        subprocess.run([world.PG_SH, "promote", self.dir], check=True, capture_output=True)

    def configure(self, **settings):
        """ALTER SYSTEM on a standby is refused; postgresql.auto.conf is not.  Then reload."""
        with open(os.path.join(self.dir, "data", "postgresql.conf"), "a") as f:
            for k, v in settings.items():
                f.write("%s = '%s'\n" % (k, v))
        self.psql("SELECT pg_reload_conf()")
        time.sleep(0.3)


@unittest.skipIf(SKIP, SKIP)
class ReplicationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-repl")
        try:
            cls._build()
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def _build(cls):
        w = cls.w
        cls.primary = w.postgres()
        cls.primary.psql(DATA_SQL)
        cls.standby = w._stack.enter_context(Standby(w.path("pg-standby"), cls.primary.dir))
        cls.standby.start()
        world.wait_for("the standby to replay the data", lambda: cls.standby.psql(
            "SELECT count(*) FROM vmail.mail_account").strip() == "1")
        psock = os.path.join(cls.primary.dir, "sock")
        ssock = os.path.join(cls.standby.dir, "sock")
        cls.socket = w.path("socketmap")
        cls.quota_socket = w.path("dict-quota")
        database = ("host=%s,%s dbname=vmail user=postgres application_name=vmaild "
                    "target_session_attrs=prefer-standby" % (ssock, psock))
        cls.vd = w.vmaild(database, "unix:" + cls.socket, dict_quota_listen="unix:" +
                          cls.quota_socket, pg_pool_size=2, pg_connect_timeout="1s",
                          request_timeout="2s", cache_ttl="1h", cache_negative_ttl="1h")

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def sessions(self, pg):
        return int(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                           "'vmaild' AND backend_type = 'client backend'").strip())

    def lookup(self, name, key):
        with smclient.Client(self.socket, timeout=10) as c:
            return c.lookup(name, key)

    def test_1_reads_from_standby(self):
        self.assertEqual(self.standby.psql("SELECT pg_is_in_recovery()").strip(), "t")
        self.assertEqual(self.lookup("mailbox", "biuro@acme.lublin.pl"), "OK biuro@acme.lublin.pl")
        # The lookup pool (2) and the replay wait's reader sit on the standby; the
        # primary has the write pool, the LISTEN connection and the replay wait's writer.
        world.wait_for("vmaild's sessions on both servers",
                       lambda: self.sessions(self.standby) >= 2 and self.sessions(self.primary) >= 1)
        on_standby, on_primary = self.sessions(self.standby), self.sessions(self.primary)
        print("\n  vmaild sessions: %d on the standby, %d on the primary"
              % (on_standby, on_primary))
        log = self.vd.log()
        self.assertIn("lookups read from a standby", log)
        self.assertGreaterEqual(on_standby, 2)

    def test_2_change_on_primary_after_replay(self):
        self.standby.configure(recovery_min_apply_delay="%dms" % APPLY_DELAY_MS)
        try:
            key = "nowy@acme.lublin.pl"
            self.assertEqual(self.lookup("mailbox", key), "NOTFOUND ")  # cached for an hour
            self.assertEqual(self.lookup("mailbox", key), "NOTFOUND ")
            self.primary.psql("SELECT vmail.account_add('%s', 'free', 'jan', '{CRYPT}x', "
                              "1048576)" % key)
            t0 = time.monotonic()
            seen = []
            while time.monotonic() - t0 < 15:
                r = self.lookup("mailbox", key)
                seen.append((round(time.monotonic() - t0, 2), smclient.kind(r)))
                if r.startswith("OK"):
                    break
                time.sleep(0.05)
            took = time.monotonic() - t0
            kinds = [k for _, k in seen]
            print("\n  change on the primary seen through vmaild after %.2f s (standby apply "
                  "delay %.1f s; %d lookups answered NOTFOUND meanwhile, from the standby "
                  "or the cache)" % (took, APPLY_DELAY_MS / 1000, kinds.count("NOTFOUND")))
            self.assertEqual(kinds[-1], "OK", "still not seen after 15 s: the cache kept the "
                             "standby's stale answer (%s)" % seen[-5:])
            # Read from the standby: not before it applied the commit.
            self.assertGreater(took, APPLY_DELAY_MS / 1000 * 0.6)
            for _ in range(5):  # and it stays seen
                self.assertEqual(self.lookup("mailbox", key), "OK " + key)
        finally:
            self.standby.configure(recovery_min_apply_delay="0")

    def test_3_failover(self):
        dc = dictclient.Client(self.quota_socket, "quota")
        self.addCleanup(dc.close)
        self.assertTrue(dc.commit(QUOTA_USER, "S{t}\tpriv/quota/storage\t1000",
                                  "S{t}\tpriv/quota/messages\t1").startswith("O"))
        counts, after = {}, {}
        promoted = [False]
        stop = threading.Event()
        lock = threading.Lock()

        def load(i):
            n = 0
            c = None
            while not stop.is_set():
                n += 1
                # A new sub-address each time: never in the cache, always a database read.
                key = "biuro+t%d-%d@acme.lublin.pl" % (i, n)
                try:
                    if c is None:
                        c = smclient.Client(self.socket, timeout=10)
                    kind = smclient.kind(c.lookup("mailbox", key))
                except (OSError, EOFError):
                    kind = "EOF"
                    if c:
                        c.close()
                    c = None
                with lock:
                    counts[kind] = counts.get(kind, 0) + 1
                    if promoted[0]:
                        after[kind] = after.get(kind, 0) + 1
                if kind != "OK":
                    time.sleep(0.02)
            if c:
                c.close()

        threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        writes = {}
        try:
            time.sleep(1.0)
            self.primary.stop()
            t_stop = time.monotonic()
            # With the primary gone, a quota write cannot commit anywhere.
            r = dc.commit(QUOTA_USER, "A{t}\tpriv/quota/storage\t1", "A{t}\tpriv/quota/messages\t0")
            writes["while down"] = r
            self.assertFalse(r.startswith("O"), r)
            self.standby.promote()
            promoted[0] = True
            t_promote = time.monotonic()
            # Writes resume on the new primary (the write pool reconnects: read-write).
            while time.monotonic() - t_promote < 20:
                r = dc.commit(QUOTA_USER, "A{t}\tpriv/quota/storage\t500",
                              "A{t}\tpriv/quota/messages\t1")
                if r.startswith("O"):
                    break
                time.sleep(0.2)
            resumed = time.monotonic() - t_promote
            writes["after promote"] = r
            time.sleep(1.0)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        usage = self.standby.psql(
            "SELECT u.bytes || ' ' || u.messages FROM vmail.mailbox_usage u JOIN "
            "vmail.mail_account a ON a.id = u.mail_account_id WHERE a.address = '%s'"
            % QUOTA_USER).strip()
        print("\n  primary stopped; standby promoted %.1f s later; quota writes resumed %.1f s "
              "after the promotion (%s)" % (t_promote - t_stop, resumed, writes))
        print("  lookups overall: %s" % dict(sorted(counts.items())))
        print("  lookups after the promotion: %s" % dict(sorted(after.items())))
        print("  usage on the new primary: %s" % usage)
        self.assertTrue(writes["after promote"].startswith("O"), writes)
        self.assertEqual(usage, "1500 2")
        self.assertEqual(counts.get("NOTFOUND", 0), 0, counts)
        self.assertEqual(counts.get("EOF", 0), 0, counts)
        self.assertGreater(after.get("OK", 0), 50, after)
        self.assertEqual(dc.storage(QUOTA_USER), "O1500")
        self.assertIsNone(self.vd.proc.poll())


if __name__ == "__main__":
    unittest.main()
