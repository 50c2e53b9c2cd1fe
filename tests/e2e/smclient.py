"""smclient: a minimal socketmap client for the ops tests (Python 3 standard library only)."""

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

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kind(reply):
    """OK, NOTFOUND, TEMP, PERM or TIMEOUT: the first word of a reply."""
    return reply.split(" ", 1)[0]
