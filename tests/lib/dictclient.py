"""dictclient: a Dovecot dict protocol 3.2 client for the end-to-end tests (standard library only).

One connection, one dict name; replies are read strictly in request order, as Dovecot's
own client expects them.  connect_as() makes the connection from a process of another uid
(the peer vmaild sees through SO_PEERCRED); unescape() decodes a reply's value.
"""

import os
import socket

# The dict protocol's field escapes (\001 then one of these), as Dovecot's strescape.c.
_UNESCAPE = {"1": "\001", "t": "\t", "r": "\r", "n": "\n", "0": "\0"}


def unescape(field):
    """A reply field as Dovecot's client reads it: \001 escapes decoded, a lone \001 at
    the end dropped."""
    out = []
    i = 0
    while i < len(field):
        c = field[i]
        if c == "\001":
            i += 1
            if i < len(field):
                out.append(_UNESCAPE.get(field[i], field[i]))
        else:
            out.append(c)
        i += 1
    return "".join(out)


def connect_as(uid, path, name, timeout=30):
    """A Client of dict name whose socket was connected by a forked child running as uid
    (its groups dropped), so that SO_PEERCRED names that uid, not root."""
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            parent.close()
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            socket.send_fds(child, [b"x"], [s.fileno()])
            code = 0
        finally:
            os._exit(code)
    child.close()
    _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    parent.close()
    os.waitpid(pid, 0)
    if not fds:
        raise RuntimeError("the child running as uid %d could not connect to %s" % (uid, path))
    return Client(None, name, timeout=timeout, sock=socket.socket(fileno=fds[0]))


class Client:
    def __init__(self, path, name, timeout=10.0, sock=None):
        """Connect to path, or (sock given) speak over an already connected socket, e.g.
        one connected by a process of another uid, which is the peer vmaild sees."""
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        else:
            sock.settimeout(timeout)
        self.sock = sock
        self.buf = b""
        self.txn = 0
        self.send("H3\t2\t0\t\t%s" % name)

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def reply(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("dict service closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def lookup(self, key, user=None):
        """L of key (with the username field when given); the reply line."""
        self.send("L" + key + ("" if user is None else "\t" + user))
        return self.reply()

    def storage(self, user):
        return self.lookup("priv/quota/storage", user)

    def begin(self, user, *ops):
        """Send one transaction, commit included, without reading the reply: ops may say
        {t} for its id; the id."""
        self.txn += 1
        t = self.txn
        self.send("B%d\t%s" % (t, user))
        for op in ops:
            self.send(op.replace("{t}", str(t)))
        self.send("C%d" % t)
        return t

    def commit(self, user, *ops):
        """One transaction (see begin); the commit's reply line."""
        self.begin(user, *ops)
        return self.reply()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
