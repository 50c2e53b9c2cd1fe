#!/usr/bin/env python3
"""sd_launch: start a program the way systemd socket activation does, without systemd.

    sd_launch.py [--user USER] [--listen NAME=unix:PATH[:OWNER[:MODE]]]...
                 [--listen NAME=inet:HOST:PORT]... [--fd NAME=FD]... -- PROGRAM ARGS...

Binds every listener (as the caller, normally root), sets the owner and mode of
unix sockets like SocketUser=/SocketMode=, moves the sockets to descriptors
3, 4, ... in order, sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (this
process's pid, which exec keeps), drops to USER like User= (with every
capability gone), and execs PROGRAM.  Python 3 standard library only.

--fd NAME=FD passes a socket the caller already listens on (inherited as FD),
the way systemd keeps a socket unit's socket across restarts of its service:
connections made while no program accepts wait in the backlog.  Sockets are
passed in the order --listen, then --fd.
"""

import argparse
import os
import pwd
import socket
import sys


def bind(spec):
    name, _, addr = spec.partition("=")
    if not name or not addr:
        raise SystemExit("sd_launch: --listen NAME=ADDRESS, got %r" % spec)
    kind, _, rest = addr.partition(":")
    if kind == "unix":
        parts = rest.split(":")
        path = parts[0]
        owner = parts[1] if len(parts) > 1 and parts[1] else None
        mode = int(parts[2], 8) if len(parts) > 2 else 0o666
        if os.path.exists(path):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        if owner:
            pw = pwd.getpwnam(owner)
            os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, mode)
    elif kind == "inet":
        host, _, port = rest.rpartition(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    else:
        raise SystemExit("sd_launch: unknown address %r" % addr)
    s.listen(1024)
    return name, s


def inherited(spec):
    name, _, fd = spec.partition("=")
    if not name or not fd.isdigit():
        raise SystemExit("sd_launch: --fd NAME=FD, got %r" % spec)
    return name, socket.socket(fileno=os.dup(int(fd)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--user")
    ap.add_argument("--listen", action="append", default=[])
    ap.add_argument("--fd", action="append", default=[])
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        raise SystemExit("sd_launch: no program given")
    socks = [bind(spec) for spec in args.listen] + [inherited(spec) for spec in args.fd]
    # Park the sockets high first, so moving them to 3.. cannot clobber one another.
    parked = [os.dup(s.fileno()) for _, s in socks]
    high = [os.dup2(fd, 100 + i) for i, fd in enumerate(parked)]
    for fd in parked:
        os.close(fd)
    for _, s in socks:
        s.close()
    for spec in args.fd:  # the caller keeps its own copy; the program gets only 3..
        os.close(int(spec.partition("=")[2]))
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
        os.close(fd)
    env = dict(os.environ)
    env["LISTEN_FDS"] = str(len(socks))
    env["LISTEN_FDNAMES"] = ":".join(name for name, _ in socks)
    env["LISTEN_PID"] = str(os.getpid())
    if args.user:
        pw = pwd.getpwnam(args.user)
        os.setgroups([])
        os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
        os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)  # clears every capability set
    sys.stdout.flush()
    os.execve(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
