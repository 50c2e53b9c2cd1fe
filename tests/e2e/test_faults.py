"""Fault and load tests for vmaild's socketmap service, bounded in time (the file < 3 min).

- DatabaseCrashTest: several clients look up keys that exist while PostgreSQL is
  killed (pg_ctl -m immediate) and restarted.  Every answer must be OK or TEMP,
  never NOTFOUND (that would be a 550 at SMTP time); answers are OK again after
  the restart.  The counts are printed.
- HostileClientsTest: garbage, a byte per second (slow loris), a client that
  never reads its replies, and 10 000 connections at once.  Meanwhile a probe
  client must keep getting answers quickly, and vmaild's resident memory must
  stay under a bound (see RSS_* below for the arithmetic).

Run as root after building:
  VMAIL_BUILD_DIR=build python3 tests/pyrun.py tests/e2e/test_faults.py
"""

import os
import resource
import socket
import threading
import time
import unittest

import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import smclient
import world

DATA_SQL = """
SELECT vmail.customer_add('acme', 'ACME');
SELECT vmail.shell_add('acme', 'jan', 2001, 2001, '/home/jan', '{CRYPT}x', 1073741824);
SELECT vmail.domain_add('acme', 'acme.lublin.pl');
SELECT vmail.domain_set_state('acme.lublin.pl', 'active');
SELECT vmail.shell_set('jan', 'mail_domain', 'acme.lublin.pl');
SELECT vmail.account_add('biuro@acme.lublin.pl', 'free', 'jan', '{CRYPT}x', 104857600);
SELECT vmail.alias_add('info@acme.lublin.pl', ARRAY['biuro@acme.lublin.pl'], false, NULL);
"""

# Keys that exist: the only acceptable answers are OK and TEMP.
EXISTING = [("mailbox", "biuro@acme.lublin.pl"), ("domain", "acme.lublin.pl"),
            ("alias", "info@acme.lublin.pl")]
PROBE = ("mailbox", "biuro@acme.lublin.pl")
PROBE_REPLY = "OK biuro@acme.lublin.pl"

CONNECTIONS = 10000
# Memory bounds for vmaild's resident set.  One idle client costs a struct conn
# (~300 B; it holds no buffer while idle), four events (read, write, kick, idle)
# and epoll bookkeeping: about 1-2 KiB, so 10 000 idle clients should add ~20 MiB;
# we allow 4 KiB each (40 MiB) plus 16 MiB for allocator slack.  A client that
# never reads may cost at most max_output_buffer (64 KiB here) plus one read
# buffer, so it must add well under 8 MiB.
RSS_PER_CONN_KIB = 4
RSS_SLACK_KIB = 16 * 1024
RSS_NONREADER_KIB = 8 * 1024
# An answer from an idle vmaild on loopback takes well under a millisecond.  A
# vmaild stalled by a hostile client would keep the probe waiting for seconds
# (the cut-offs here are 2 s and more); the bound sits far above scheduling
# noise on a busy 2-core machine so it cannot fail by chance: 0.5 s failed twice
# (0.64 s under ASan right after 10 000 connections closed, with a second suite
# running; 1.69 s at load average 15), so the bound sits just under IDLE (2 s): a
# vmaild blocked on a hostile client stalls for the whole idle_timeout or longer.
# Speed itself is measured by scripts/bench.sh, never asserted here.
PROBE_MAX_S = 1.9
PROBE_MAX_FLOOD_S = 1.9  # while 10 000 connections are being accepted

SKIP = world.missing_prerequisites()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


class WorldTest(unittest.TestCase):
    """One PostgreSQL per class (tests/pyrun.py runs no module fixtures); a vmaild per test."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World("vmail-faults")
        try:
            cls.pg = cls.w.postgres()
            cls.pg.psql(DATA_SQL)
        except BaseException:
            cls.w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def start_vmaild(self, name, **settings):
        """A vmaild of its own for one test, stopped by the test's cleanup."""
        sock = self.w.path(name, "socketmap")
        settings.setdefault("log_level", "info")
        vd = world.Vmaild(self.w.path(name), self.pg.dsn, "unix:" + sock, **settings)
        self.addCleanup(vd.close)
        vd.start()
        vd.socket = sock
        return vd


class Probe:
    """A well-behaved client asking one existing key every interval, in a thread."""

    def __init__(self, path, interval=0.02):
        self.path = path
        self.interval = interval
        self.latencies = []
        self.started = []  # when each probe was sent, beside its latency
        self.bad = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        c = self._client
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                r = c.lookup(*PROBE)
                self.started.append(t0)
                self.latencies.append(time.monotonic() - t0)
                if r != PROBE_REPLY:
                    self.bad.append(r)
                self._stop.wait(self.interval)
        except Exception as e:  # reported by the test through self.bad
            self.bad.append(repr(e))
        finally:
            c.close()

    def __enter__(self):
        # Connected before the caller's flood starts: a connect racing 10 000 others can find
        # the listen backlog full and fail with EAGAIN (smclient's sockets have a timeout,
        # so they are non-blocking), which would be the kernel's limit, not vmaild's latency.
        self._client = smclient.Client(self.path, timeout=10)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(15)

    def max(self, since=0):
        return max(self.latencies[since:]) if self.latencies[since:] else float("inf")

    def max_sent_after(self, t):
        """The worst latency of the probes sent at or after monotonic time t."""
        late = [lat for t0, lat in zip(self.started, self.latencies) if t0 >= t]
        return max(late) if late else float("inf")


@unittest.skipIf(SKIP, SKIP)
class DatabaseCrashTest(WorldTest):
    """pg_ctl -m immediate under a lookup load: OK or TEMP, never NOTFOUND."""

    CLIENTS = 6

    def test_kill_and_restart_postgres(self):
        # Without the answer cache: with it, these keys would be served from the cache during
        # the outage (tests/e2e/test_cache.py covers that).
        vd = self.start_vmaild("vmaild-crash", request_timeout="1s", pg_connect_timeout="1s",
                          pg_pool_size=2, cache_size="0")
        counts = {}
        after_restart = {}
        errors = []
        restarted_at = [None]
        stop = threading.Event()
        lock = threading.Lock()

        def load(i):
            c = None
            n = 0
            while not stop.is_set():
                name, key = EXISTING[(i + n) % len(EXISTING)]
                n += 1
                try:
                    if c is None:
                        c = smclient.Client(vd.socket, timeout=10)
                    kind = smclient.kind(c.lookup(name, key))
                except (OSError, EOFError) as e:
                    # Postfix would retry once on a new connection; so do we, but count it.
                    kind = "EOF"
                    errors.append(repr(e))
                    if c:
                        c.close()
                    c = None
                with lock:
                    counts[kind] = counts.get(kind, 0) + 1
                    if restarted_at[0] is not None:
                        after_restart[kind] = after_restart.get(kind, 0) + 1
                if kind != "OK":
                    time.sleep(0.01)  # TEMP comes back fast; do not spin
            if c:
                c.close()

        threads = [threading.Thread(target=load, args=(i,), daemon=True)
                   for i in range(self.CLIENTS)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.5)
            before = dict(counts)
            self.pg.kill()
            killed = time.monotonic()
            time.sleep(2.5)
            self.pg.start()
            restarted_at[0] = time.monotonic()
            # Carry on until answers have been OK again for a while (at most 20 s).
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and after_restart.get("OK", 0) < 200:
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        print("\n  before the kill: %s" % before)
        print("  kill at +%.1fs, restart after %.1fs down" % (1.5, restarted_at[0] - killed))
        print("  answers overall: %s" % dict(sorted(counts.items())))
        print("  answers after the restart: %s" % dict(sorted(after_restart.items())))
        self.assertGreater(before.get("OK", 0), 0, "no OK before the kill")
        self.assertEqual(counts.get("NOTFOUND", 0), 0, "NOTFOUND for existing keys: %s" % counts)
        self.assertEqual(counts.get("PERM", 0), 0, counts)
        self.assertGreater(counts.get("TEMP", 0), 0, "the outage was not noticed: %s" % counts)
        self.assertGreaterEqual(after_restart.get("OK", 0), 200, after_restart)
        self.assertEqual(counts.get("EOF", 0), 0, "connections dropped: %s" % errors[:5])
        self.assertIsNone(vd.proc.poll(), "vmaild died")


@unittest.skipIf(SKIP, SKIP)
class HostileClientsTest(WorldTest):
    IDLE = 2.0  # idle_timeout: also how long a client that does not read may stall us

    def start(self, **settings):
        settings.setdefault("idle_timeout", "%dms" % (self.IDLE * 1000))
        settings.setdefault("max_output_buffer", "64K")
        vd = self.start_vmaild("vmaild-" + self._testMethodName, **settings)
        with smclient.Client(vd.socket) as c:  # warm the pool: the first query prepares
            self.assertEqual(c.lookup(*PROBE), PROBE_REPLY)
        return vd

    def assert_alive(self, vd):
        self.assertIsNone(vd.proc.poll(), "vmaild died:\n" + vd.log()[-3000:])
        with smclient.Client(vd.socket, timeout=5) as c:
            t0 = time.monotonic()
            self.assertEqual(c.lookup(*PROBE), PROBE_REPLY)
            self.assertLess(time.monotonic() - t0, PROBE_MAX_S)

    @staticmethod
    def wait_closed(sock, timeout):
        """Read (and drop) whatever arrives until EOF or reset; seconds taken, or None."""
        t0 = time.monotonic()
        sock.settimeout(0.2)
        while time.monotonic() - t0 < timeout:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic() - t0
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic() - t0
        return None

    def test_garbage(self):
        vd = self.start()
        cases = {
            "random bytes": os.urandom(4096),
            "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "netstring without comma": b"5:hello!",
            "leading zero": b"05:hello,",
            "too large": b"99999999:",
            "binary after a good request": smclient.netstring("domain acme.lublin.pl") +
                                           b"\x00\xff\xfe" * 100,
        }
        rounds = 0
        t0 = time.monotonic()
        with Probe(vd.socket) as probe:
            while rounds < 3 or time.monotonic() - t0 < 1.5:  # keep the probe company
                rounds += 1
                for name, data in cases.items():
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(vd.socket)
                    try:
                        s.sendall(data)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    took = self.wait_closed(s, 3)
                    s.close()
                    self.assertIsNotNone(took, "%s: connection left open" % name)
        self.assertEqual(probe.bad, [])
        self.assertLess(probe.max(), PROBE_MAX_S)
        # A well-formed request for an unknown map is answered and the stream goes on.
        with smclient.Client(vd.socket) as c:
            self.assertTrue(c.lookup("nosuchmap", "x").startswith("PERM"))
            self.assertEqual(c.lookup(*PROBE), PROBE_REPLY)
        print("\n  garbage: %d connections (%d kinds) all closed; probe max %.1f ms over %d "
              "lookups" % (rounds * len(cases), len(cases), probe.max() * 1000,
                           len(probe.latencies)))
        self.assert_alive(vd)

    def test_slow_loris(self):
        """Clients dribbling a request a byte per second are cut off at idle_timeout."""
        vd = self.start()
        n = 50
        request = smclient.netstring("mailbox biuro@acme.lublin.pl")
        socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(vd.socket)
            s.setblocking(False)
            socks.append(s)
        closed_after = [None] * n
        t0 = time.monotonic()
        with Probe(vd.socket) as probe:
            for i in range(len(request)):
                if all(c is not None for c in closed_after) or time.monotonic() - t0 > 8:
                    break
                for k, s in enumerate(socks):
                    if closed_after[k] is not None:
                        continue
                    try:
                        s.send(request[i:i + 1])
                        if s.recv(100) == b"":
                            closed_after[k] = time.monotonic() - t0
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, ConnectionResetError):
                        closed_after[k] = time.monotonic() - t0
                time.sleep(1.0)
        for s in socks:
            s.close()
        done = [c for c in closed_after if c is not None]
        print("\n  slow loris: %d of %d cut off after %.1f-%.1f s (idle_timeout %.0f s); probe "
              "max %.1f ms" % (len(done), n, min(done or [0]), max(done or [0]), self.IDLE,
                               probe.max() * 1000))
        self.assertEqual(len(done), n, "slow clients still connected")
        self.assertLessEqual(max(done), self.IDLE + 2.5)
        self.assertEqual(probe.bad, [])
        self.assertLess(probe.max(), PROBE_MAX_S)
        self.assert_alive(vd)

    def test_never_reads(self):
        """Pipelined requests whose replies are never read: paused, then dropped."""
        vd = self.start(log_level="debug")  # the reason for closing is a debug line
        rss0 = rss_kib(vd.pid)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(vd.socket)
        s.setblocking(False)
        chunk = smclient.netstring("mailbox biuro@acme.lublin.pl") * 200
        sent = 0
        peak = rss0
        t0 = time.monotonic()
        with Probe(vd.socket) as probe:
            # Push for a while: vmaild must stop reading, not buffer without end.
            while time.monotonic() - t0 < 1.5:
                try:
                    sent += s.send(chunk)
                except BlockingIOError:
                    time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    break
                peak = max(peak, rss_kib(vd.pid))
            stalled = time.monotonic()
            # Now wait for vmaild to give up on us (write timeout = idle_timeout).
            while time.monotonic() - stalled < self.IDLE + 3:
                peak = max(peak, rss_kib(vd.pid))
                if "client does not read its replies" in vd.log():
                    break
                time.sleep(0.1)
            dropped_after = time.monotonic() - stalled
        took = self.wait_closed(s, 5)
        s.close()
        requests = sent // len(smclient.netstring("mailbox biuro@acme.lublin.pl"))
        print("\n  never reads: sent %d requests (%d KiB) before vmaild stopped reading; "
              "dropped %.1f s later; RSS %d -> peak %d KiB; probe max %.1f ms"
              % (requests, sent // 1024, dropped_after, rss0, peak, probe.max() * 1000))
        self.assertIn("client does not read its replies", vd.log())
        self.assertIsNotNone(took, "connection not closed")
        self.assertLess(sent, 64 * 1024 * 1024, "vmaild kept reading")
        self.assertLess(peak - rss0, RSS_NONREADER_KIB)
        self.assertEqual(probe.bad, [])
        self.assertLess(probe.max(), PROBE_MAX_S)
        self.assert_alive(vd)

    def test_ten_thousand_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = CONNECTIONS + 200
        if soft < need:
            if hard != resource.RLIM_INFINITY and hard < need:
                self.fail("RLIMIT_NOFILE hard limit %d < %d: raise it for the CI user" % (hard, need))
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        vd = self.start(max_connections=CONNECTIONS + 500,
                        socketmap_max_connections=CONNECTIONS + 500, idle_timeout="60s")
        rss0 = rss_kib(vd.pid)
        socks = []
        lock = threading.Lock()
        failures = []

        def opener(count):
            mine = []
            for _ in range(count):
                # Blocking: a full unix backlog makes connect wait, not fail with EAGAIN.
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(vd.socket)
                    mine.append(s)
                except OSError as e:
                    failures.append(repr(e))
                    s.close()
            with lock:
                socks.extend(mine)

        t0 = time.monotonic()
        with Probe(vd.socket, interval=0.01) as probe:
            threads = [threading.Thread(target=opener, args=(CONNECTIONS // 10,))
                       for _ in range(10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            opened = time.monotonic() - t0

            # Every connection is really served: vmaild accepted them all.
            def accepted():
                return "%d connections" % len(socks) if len(socks) == CONNECTIONS else None
            world.wait_for("10 000 connections", accepted, timeout=30)
            time.sleep(0.5)
            rss1 = rss_kib(vd.pid)
            # A few of the 10 000 ask something, including the very last one.
            for s in socks[:: CONNECTIONS // 20] + socks[-1:]:
                s.sendall(smclient.netstring("mailbox biuro@acme.lublin.pl"))
            for s in socks[:: CONNECTIONS // 20] + socks[-1:]:
                data = b""
                while not data.endswith(b","):
                    data += s.recv(100)
                self.assertEqual(data, smclient.netstring(PROBE_REPLY))
            # vmaild has now accepted even the last connection: the flood is over.  (A probe
            # sent during the flood but answered after it belongs to the flood.)
            flood_over = time.monotonic()
            # And a newcomer is answered at once.
            t1 = time.monotonic()
            with smclient.Client(vd.socket, timeout=5) as c:
                self.assertEqual(c.lookup(*PROBE), PROBE_REPLY)
            newcomer = time.monotonic() - t1
            time.sleep(0.3)
            n_after = sum(1 for t in probe.started if t >= flood_over)
        for s in socks:
            s.close()
        bound = rss0 + CONNECTIONS * RSS_PER_CONN_KIB + RSS_SLACK_KIB
        print("\n  %d connections opened in %.1f s (%d failed); vmaild RSS %d -> %d KiB "
              "(%.2f KiB per connection; bound %d KiB); probe max %.1f ms during the flood, "
              "%.1f ms after; newcomer %.1f ms"
              % (len(socks), opened, len(failures), rss0, rss1,
                 (rss1 - rss0) / max(1, len(socks)), bound, probe.max(0) * 1000,
                 probe.max_sent_after(flood_over) * 1000, newcomer * 1000))
        self.assertEqual(failures, [])
        self.assertLess(rss1, bound)
        self.assertEqual(probe.bad, [])
        self.assertLess(probe.max(0), PROBE_MAX_FLOOD_S)
        self.assertGreater(n_after, 0, "no probe was sent after the flood")
        self.assertLess(probe.max_sent_after(flood_over), PROBE_MAX_S)
        self.assertLess(newcomer, PROBE_MAX_S)

        time.sleep(1.0)
        self.assert_alive(vd)

    def test_over_max_connections(self):
        """Past max_connections: refused politely (TEMP), and old clients keep being served."""
        vd = self.start(max_connections=100)
        with Probe(vd.socket) as probe:
            time.sleep(0.1)
            socks, replies = [], {}
            for _ in range(300):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(vd.socket)
                except BlockingIOError:  # backlog full: the kernel says "later"
                    s.close()
                    continue
                socks.append(s)
            time.sleep(0.5)
            for s in socks:
                try:
                    s.send(smclient.netstring("mailbox biuro@acme.lublin.pl"))
                except OSError:
                    pass
            time.sleep(1.0)
            for s in socks:
                try:
                    data = s.recv(200)
                except BlockingIOError:
                    data = b"(waiting in the backlog)"
                except OSError as e:
                    data = repr(e).encode()
                kind = smclient.kind(data.decode(errors="replace").partition(":")[2]) or "EOF"
                replies[kind] = replies.get(kind, 0) + 1
                s.close()
        print("\n  300 connections against max_connections=100: %s; probe max %.1f ms"
              % (dict(sorted(replies.items())), probe.max() * 1000))
        self.assertEqual(probe.bad, [])
        self.assertLess(probe.max(), PROBE_MAX_S)
        self.assertEqual(replies.get("NOTFOUND", 0), 0)
        self.assertGreater(replies.get("OK", 0), 0)
        self.assertGreater(replies.get("TEMP", 0), 0, replies)
        self.assertIn("max_connections is 100", vd.log())
        self.assert_alive(vd)


if __name__ == "__main__":
    unittest.main()
