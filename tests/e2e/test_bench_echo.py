"""End-to-end: vmail-bench's epoll echo server, the socket path's baseline in
docs/benchmarks.md.

It must answer every socketmap request "OK <key>" in order: one at a time, pipelined,
split across writes, a read full of the shortest requests, and a burst far larger than
the socket buffers read slowly (its short-write path).  A broken frame closes the
connection; SIGTERM removes the socket.  A benchmark against a server that loses or
reorders answers measures nothing.

Run after building:  python3 tests/pyrun.py tests/e2e/test_bench_echo.py
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import world  # noqa: E402

BENCH = os.path.join(world.BUILD, "vmail-bench")


def frame(payload):
    return b"%d:%s," % (len(payload), payload)


def split_frames(buf):
    """The complete netstrings at the start of buf (their payloads), and the rest."""
    out = []
    while b":" in buf:
        n, rest = buf.split(b":", 1)
        if len(rest) < int(n) + 1:
            break
        assert rest[int(n):int(n) + 1] == b",", rest[:40]
        out.append(rest[:int(n)])
        buf = rest[int(n) + 1:]
    return out, buf


def read_frames(sock, count):
    """count netstrings from sock (their payloads), however the bytes arrive."""
    buf, out = b"", []
    while len(out) < count:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise AssertionError(f"closed after {len(out)} of {count} answers")
        frames, buf = split_frames(buf + chunk)
        out += frames
    return out


class EchoServerTest(unittest.TestCase):

    def setUp(self):
        if not os.access(BENCH, os.X_OK):
            self.fail(f"no vmail-bench at {BENCH} (set VMAIL_BUILD_DIR)")
        self.dir = tempfile.mkdtemp(prefix="vmail-echo-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "echo.sock")
        self.proc = subprocess.Popen([BENCH, "--echo-server", "unix:" + self.path],
                                     stderr=subprocess.PIPE)
        # ready once it accepts: the socket file exists between bind() and listen()
        deadline = time.monotonic() + 10
        while True:
            self.assertIsNone(self.proc.poll(), "echo server exited at start")
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.assertLess(time.monotonic(), deadline, "not accepting after 10 s")
                time.sleep(0.02)

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()

    def connect(self):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(self.path)
        self.addCleanup(s.close)
        return s

    def test_one_at_a_time_and_split(self):
        s = self.connect()
        for key in (b"jan@acme.lublin.pl", b"Info+Tag@ACME.lublin.pl"):
            s.sendall(frame(b"alias " + key))
            self.assertEqual(read_frames(s, 1), [b"OK " + key])
        s.sendall(b"8:alias")
        time.sleep(0.05)
        s.sendall(b" ab,")
        self.assertEqual(read_frames(s, 1), [b"OK ab"])
        s.sendall(frame(b"alias"))  # no key
        self.assertEqual(read_frames(s, 1), [b"NOTFOUND "])

    def test_pipelined_in_order(self):
        s = self.connect()
        s.sendall(b"".join(frame(b"alias k%d@x" % i) for i in range(500)))
        self.assertEqual(read_frames(s, 500), [b"OK k%d@x" % i for i in range(500)])

    def test_shortest_requests_fill_a_read(self):
        # the answers are four times the size of these requests
        s = self.connect()
        s.sendall(b"0:," * 20000)
        self.assertEqual(read_frames(s, 20000), [b"NOTFOUND "] * 20000)

    def test_burst_read_slowly(self):
        # 300 answers of 5 kB read slowly, so that the server's writes come up short and it
        # must wait for the socket to drain
        s = self.connect()
        key = b"x" * 5000
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        data = frame(b"alias " + key) * 300
        sent = 0
        got = []
        s.setblocking(False)
        buf = b""
        deadline = time.monotonic() + 60
        while len(got) < 300:
            self.assertLess(time.monotonic(), deadline, f"{len(got)} of 300 answers after 60 s")
            if sent < len(data):
                try:
                    sent += s.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
            time.sleep(0.001)
            try:
                frames, buf = split_frames(buf + s.recv(4096))
            except BlockingIOError:
                continue
            got += frames
        self.assertEqual(got, [b"OK " + key] * 300)

    def test_broken_frame_closes(self):
        s = self.connect()
        s.sendall(b"99999999999:x")
        self.assertEqual(s.recv(100), b"")
        # the server itself goes on
        t = self.connect()
        t.sendall(frame(b"alias still@here"))
        self.assertEqual(read_frames(t, 1), [b"OK still@here"])

    def test_sigterm_removes_socket(self):
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(self.path))
        err = self.proc.stderr.read().decode(errors="replace")
        self.assertNotIn("Sanitizer", err)


if __name__ == "__main__":
    unittest.main()
