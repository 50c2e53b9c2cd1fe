#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_dnscheck (tests/fuzz/corpus/dnscheck/): hand-built DNS replies.

Usage: python3 tests/fuzz/dnscheck_seeds.py tests/fuzz/corpus/dnscheck
The first byte of each seed is the harness selector (name index << 2 | type index, bit 7 for
the framed form); see fuzz_dnscheck.c.  many-labels-name is a fuzzer find, not made here.
"""
import struct, os, sys
out = sys.argv[1]
NAMES = ["example.com", "_vmail-verify.example.com", "Mail.Example.ORG.", "a.b"]
QT = {15: 0, 16: 1, 1: 2, 5: 3}

def enc(name):
    b = b""
    for l in name.rstrip(".").split("."):
        b += bytes([len(l)]) + l.encode()
    return b + b"\0"

def hdr(id, flags, qd, an, ns, ar):
    return struct.pack(">HHHHHH", id, flags, qd, an, ns, ar)

def rr(owner, t, rdata, ttl=300):
    return owner + struct.pack(">HHIH", t, 1, ttl, len(rdata)) + rdata

def txt(*strings):
    return b"".join(bytes([len(s)]) + s for s in strings)

PTR_Q = b"\xc0\x0c"  # the question name, right after the header

def msg(id, flags, qname, qtype, answers, ns=(), ar=()):
    return (hdr(id, flags, 1, len(answers), len(ns), len(ar)) + enc(qname) +
            struct.pack(">HH", qtype, 1) + b"".join(answers) + b"".join(ns) + b"".join(ar))

opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
seeds = {}
# MX for example.com: exchanges compressed against the question name
q = enc("example.com")
mx1 = struct.pack(">H", 10) + b"\x03mx1" + PTR_Q
mx2 = struct.pack(">H", 20) + b"\x03mx2" + PTR_Q
seeds["mx-compressed"] = (0, "example.com", 15,
    msg(0x1a2b, 0x8180, "example.com", 15, [rr(PTR_Q, 15, mx1), rr(PTR_Q, 15, mx2)], ar=[opt]))
# TXT proof record, two character-strings joined
seeds["txt-proof"] = (1, "_vmail-verify.example.com", 16,
    msg(0x0102, 0x8180, "_vmail-verify.example.com", 16,
        [rr(PTR_Q, 16, txt(b"vmail-verify=", b"0123456789abcdef")), rr(PTR_Q, 16, txt(b"v=spf1 -all"))],
        ar=[opt]))
# CNAME chain: the proof name is an alias; the target's TXT owner points into the CNAME rdata
cname_rdata = b"\x06verify\x07example\x03net\x00"
first = hdr(0x7777, 0x8180, 1, 2, 0, 0) + enc("_vmail-verify.example.com") + struct.pack(">HH", 16, 1)
cname_rr = rr(PTR_Q, 5, cname_rdata)
target_off = len(first) + 2 + 10
txt_rr = rr(struct.pack(">H", 0xc000 | target_off), 16, txt(b"vmail-verify=0123456789abcdef"))
seeds["txt-cname"] = (1, "_vmail-verify.example.com", 16, first + cname_rr + txt_rr)
# A records for a.b (the codec reads any type; A is what a resolver returns most)
seeds["a-two"] = (3, "a.b", 1,
    msg(0x0a0b, 0x8580, "a.b", 1, [rr(PTR_Q, 1, bytes([192, 0, 2, 1])), rr(PTR_Q, 1, bytes([192, 0, 2, 2]))]))
# CNAME asked for directly, target compressed against the question's tail
seeds["cname-direct"] = (2, "Mail.Example.ORG.", 5,
    msg(0x5555, 0x8180, "mail.example.org", 5, [rr(PTR_Q, 5, b"\x04mail\x04host\xc0\x11")]))
# NXDOMAIN with the SOA in the authority section
soa = b"\x03ns1\xc0\x0c" + b"\x0ahostmaster\xc0\x0c" + struct.pack(">IIIII", 2024010101, 3600, 600, 86400, 300)
seeds["nxdomain-soa"] = (1, "_vmail-verify.example.com", 16,
    msg(0x0303, 0x8183, "_vmail-verify.example.com", 16, [], ns=[rr(b"\xc0\x1a", 6, soa)]))
# NODATA: MX asked, no answer
seeds["nodata"] = (0, "example.com", 15, msg(0x0404, 0x8180, "example.com", 15, [], ar=[opt]))
# SERVFAIL, truncated, and a pointer loop in an answer owner
seeds["servfail"] = (0, "example.com", 15, msg(0x0505, 0x8182, "example.com", 15, []))
seeds["truncated"] = (1, "_vmail-verify.example.com", 16, msg(0x0606, 0x8380, "_vmail-verify.example.com", 16, []))
loop_first = hdr(0x0707, 0x8180, 1, 1, 0, 0) + enc("example.com") + struct.pack(">HH", 15, 1)
seeds["pointer-loop"] = (0, "example.com", 15, loop_first + rr(struct.pack(">H", 0xc000 | len(loop_first)), 15, mx1))

os.makedirs(out, exist_ok=True)
for name, (ni, qname, qtype, m) in seeds.items():
    sel = (ni << 2) | QT[qtype]
    assert NAMES[ni] == qname, name
    open(os.path.join(out, name), "wb").write(bytes([sel]) + m)
    # the framed form: header + everything after the question
    qend = 12 + len(enc(qname)) + 4
    open(os.path.join(out, name + "-framed"), "wb").write(bytes([0x80 | sel]) + m[:12] + m[qend:])
