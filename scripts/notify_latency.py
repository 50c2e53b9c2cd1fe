#!/usr/bin/env python3
"""notify_latency.py: how long after a commit vmaild answers a changed alias anew.

    scripts/notify_latency.py SOCKETMAP_SOCKET DSN ALIAS TARGET_A TARGET_B [N]

Flips ALIAS between TARGET_A and TARGET_B N times (default 200) through one psql session
(vmail.alias_set, autocommit), and after each change polls vmaild's socketmap until the
answer is the new target.  Two times per change, in milliseconds:
  after_commit  from psql reporting the commit back to the first new answer (a lower bound:
                it misses the time the acknowledgement took to reach us)
  after_send    from sending the change to the first new answer (an upper bound: it
                includes running the change itself)
Before each change the old answer is read twice, so it is cached.  Prints percentiles and
one RESULT line for scripts.  Python 3 standard library and psql only.
"""

import socket
import subprocess
import sys
import time


def netstring(s):
    b = s.encode()
    return b"%d:%s," % (len(b), b)


class Socketmap:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def lookup(self, name, key):
        self.s.sendall(netstring("%s %s" % (name, key)))
        while True:
            head, sep, rest = self.buf.partition(b":")
            if sep:
                n = int(head)
                if len(rest) >= n + 1:
                    self.buf = rest[n + 1:]
                    return rest[:n].decode()
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("vmaild closed the connection")
            self.buf += chunk


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * (len(v) - 1) + 0.5))]


def main():
    if len(sys.argv) not in (6, 7):
        sys.stderr.write(__doc__)
        return 2
    path, dsn, alias, a, b = sys.argv[1:6]
    n = int(sys.argv[6]) if len(sys.argv) == 7 else 200
    sm = Socketmap(path)
    psql = subprocess.Popen(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", dsn],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    after_commit, after_send = [], []
    for i in range(n):
        old, new = (a, b) if i % 2 == 0 else (b, a)
        for _ in range(2):
            got = sm.lookup("alias", alias)
        if got != "OK " + old:
            # first round, or a previous flip not yet seen: set the old target first
            psql.stdin.write("SELECT vmail.alias_set('%s', ARRAY['%s']);\n\\echo ok\n" % (alias, old))
            while psql.stdout.readline().strip() != "ok":
                pass
            deadline = time.monotonic() + 5
            while sm.lookup("alias", alias) != "OK " + old:
                if time.monotonic() > deadline:
                    raise SystemExit("alias never became %s" % old)
            sm.lookup("alias", alias)
        t_send = time.monotonic()
        psql.stdin.write("SELECT vmail.alias_set('%s', ARRAY['%s']);\n\\echo committed\n" % (alias, new))
        while True:
            line = psql.stdout.readline()
            if not line:
                raise SystemExit("psql exited")
            if line.strip() == "committed":
                break
        t_commit = time.monotonic()
        while True:
            got = sm.lookup("alias", alias)
            if got == "OK " + new:
                break
            if time.monotonic() - t_commit > 5:
                raise SystemExit("no new answer 5 s after the commit: %r" % got)
        t_seen = time.monotonic()
        after_commit.append((t_seen - t_commit) * 1000)
        after_send.append((t_seen - t_send) * 1000)
    psql.stdin.close()
    psql.wait()
    for name, v in (("after_commit", after_commit), ("after_send", after_send)):
        print("%-13s ms  p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%d changes)" % (
            name, pct(v, 50), pct(v, 90), pct(v, 99), max(v), len(v)))
    print("RESULT changes=%d commit_p50_ms=%.2f commit_p99_ms=%.2f commit_max_ms=%.2f "
          "send_p50_ms=%.2f send_p99_ms=%.2f send_max_ms=%.2f over_100ms=%d" % (
              n, pct(after_commit, 50), pct(after_commit, 99), max(after_commit),
              pct(after_send, 50), pct(after_send, 99), max(after_send),
              sum(1 for x in after_send if x > 100)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
