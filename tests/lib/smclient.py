"""smclient: a strict socketmap client for the end-to-end tests (Python 3 standard library only)."""

import socket


def netstring(payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return b"%d:%s," % (len(payload), payload)


class Client:
    """One connection; reads exactly one netstring per reply.  addr: a unix path or (host, port)."""

    def __init__(self, addr, timeout=10.0):
        family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(addr)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buf += chunk

    def reply(self):
        while b":" not in self.buf:
            self._fill()
        head, _, rest = self.buf.partition(b":")
        # Postfix's reader accepts only plain decimal lengths: no sign, no leading zero.
        if not head.isdigit() or (head.startswith(b"0") and head != b"0"):
            raise ValueError("bad netstring length: %r" % self.buf[:40])
        n = int(head)
        while len(rest) < n + 1:
            self._fill()
            head, _, rest = self.buf.partition(b":")
        if rest[n:n + 1] != b",":
            raise ValueError("no comma after payload: %r" % rest[: n + 5])
        self.buf = rest[n + 1:]
        return rest[:n].decode()

    def lookup(self, name, key):
        self.send(netstring("%s %s" % (name, key)))
        return self.reply()

    def at_eof(self, timeout=3.0):
        """True if the server closes the connection without sending anything more."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b"" and self.buf == b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kind(reply):
    """OK, NOTFOUND, TEMP, PERM or TIMEOUT: the first word of a reply."""
    return reply.split(" ", 1)[0]
