#!/usr/bin/env python3
"""test_vmailctl_sieve: "vmailctl vacation" and "vmailctl forward" (issue 24) and "customer set
NAME self-forward" against a private PostgreSQL — both modes, --json, the 8 KiB message limit
checked before anything is sent, usage errors, a self-service user kept out of other accounts'
mailboxes, the customer's switch for self-service forwarding, and the audit log.

Environment: VMAIL_BUILD_DIR (default <repo>/build) holds the vmailctl binary.
Run: python3 tests/pyrun.py tests/e2e/test_vmailctl_sieve.py
"""
import json
import os
import unittest

from test_vmailctl import Base

JAN, EWA = "janpw\n", "ewapw\n"
MAX = 8192


class TestSieve(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()

        def ok(args, stdin=None, as_login=None):
            rc, out, err = cls.ctl(args, stdin, as_login)
            assert rc == 0, "vmailctl %s: %s" % (" ".join(args), err)
            return out

        cls.files = os.path.join(cls.pg.dir, "messages")
        os.mkdir(cls.files)
        ok(["customer", "add", "sv"])
        for login, uid, pw, dom in (("jan", 8101, JAN, "sv.lublin.pl"), ("ewa", 8102, EWA, "sw.lublin.pl")):
            ok(["shell", "add", "sv", login, "--uid", str(uid), "--gid", str(uid), "--disk-limit", "100M"],
               stdin=pw)
            ok(["domain", "add", "sv", dom])
            ok(["domain", "confirm", dom])
            ok(["shell", "set", login, "--mail-domain", dom])
        for box in ("biuro", "kadry", "m1", "m2", "m3"):
            ok(["mailbox", "add", box + "@sv.lublin.pl", "--quota", "1M"], stdin=JAN + box + "pw\n",
               as_login="jan")
        ok(["mailbox", "add", "kasa@sw.lublin.pl", "--quota", "1M"], stdin=EWA + "kasapw\n", as_login="ewa")
        ok(["mailbox", "add", "sales@sv.lublin.pl", "--paid", "--customer", "sv", "--quota", "1M"],
           stdin="salespw\n")
        ok(["alias", "add", "info@sv.lublin.pl", "biuro@sv.lublin.pl", "--admin"])
        cls.primary = ok(["settings", "show", "primary_domain"]).split()[-1]

    def snapshot(self):
        # the rule rows are what these commands change; Base's tables hold the rest
        return super().snapshot() + self.pg.psql(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM vmail.sieve_rule t")

    def message(self, name, content):
        path = os.path.join(self.files, name)
        with open(path, "wb") as f:
            f.write(content.encode() if isinstance(content, str) else content)
        return path

    def vacation(self, address, as_login=None):
        return json.loads(self.ok(["vacation", "show", address, "--json"],
                                  stdin=JAN if as_login else None, as_login=as_login))

    def forwards(self, address, as_login=None):
        return [(f["target"], f["keep"]) for f in json.loads(
            self.ok(["forward", "list", address, "--json"], stdin=JAN if as_login else None, as_login=as_login))]

    def test_vacation_round_trip(self):
        text = "Dear sender,\r\n\r\nI am away; zażółć.\r\n\tBack on Monday.\r\n.a line with a dot\r\n"
        stored = text.replace("\r\n", "\n")
        path = self.message("away.txt", text)
        # mode, mailbox, how the message is given, the options beyond --subject, what show says
        cases = [
            (None, "biuro@sv.lublin.pl", ["--message-file", path], None,
             ["--start", "2026-07-01", "--end", "2026-07-14", "--days", "3", "--from-address", "Info@sv.lublin.pl"],
             {"start_date": "2026-07-01", "end_date": "2026-07-14", "days": 3, "from_address": "info@sv.lublin.pl"}),
            (None, "kadry@sv.lublin.pl", ["--message-file", path], None, [],
             {"start_date": None, "end_date": None, "days": 7, "from_address": "kadry@sv.lublin.pl"}),
            # self-service, the message on standard input after the password
            ("jan", "m1@sv.lublin.pl", ["--message-file", "-"], JAN + text, ["--end", "2026-12-31", "--days", "30"],
             {"start_date": None, "end_date": "2026-12-31", "days": 30, "from_address": "m1@sv.lublin.pl"}),
        ]
        for as_login, box, msg, stdin, opts, want in cases:
            with self.subTest(mode=as_login or "admin", mailbox=box):
                pw = JAN if as_login else None
                out = self.ok(["vacation", "set", box, "--subject", "Out of office"] + msg + opts,
                              stdin=stdin or pw, as_login=as_login)
                self.assertEqual(out, "vacation reply of %s set\n" % box)
                shown = self.vacation(box, as_login)
                self.assertEqual(set(shown), {"address", "active", "subject", "body", "start_date", "end_date",
                                              "days", "from_address", "addresses"})
                self.assertEqual(shown, dict(want, address=box, active=True, subject="Out of office",
                                             body=stored, addresses=shown["addresses"]))
                self.assertIn(box, shown["addresses"])
                # the readable block: the text under "body", one indented line per line
                human = self.ok(["vacation", "show", box], stdin=pw, as_login=as_login)
                self.assertIn("\nactive         yes\n", human)
                self.assertTrue(human.endswith("\nbody\n" + "".join("  " + line + "\n"
                                                                    for line in stored.splitlines())), human)
                self.assertEqual(self.ok(["vacation", "off", box], stdin=pw, as_login=as_login),
                                 "vacation reply of %s off\n" % box)
                # off keeps the text for the next time
                self.assertEqual(self.vacation(box, as_login), dict(shown, active=False))
        self.assertEqual(self.vacation("biuro@sv.lublin.pl")["addresses"], ["biuro@sv.lublin.pl", "info@sv.lublin.pl"])
        # a mailbox that never had one: off, nothing else
        own = self.vacation("ewa")
        self.assertEqual((own["address"], own["active"], own["subject"], own["body"]),
                         ("ewa@" + self.primary, False, None, None))
        self.assertIn("\nbody           -\n", self.ok(["vacation", "show", "ewa"]))
        # a character that could turn the terminal's text around is shown escaped
        self.ok(["vacation", "set", "m2@sv.lublin.pl", "--subject", "x", "--message-file",
                 self.message("bidi.txt", "evil \u202etxt.exe\n")])
        self.assertIn("\n  evil \\xe2\\x80\\xaetxt.exe\n", self.ok(["vacation", "show", "m2@sv.lublin.pl"]))
        self.ok(["vacation", "off", "m2@sv.lublin.pl"])

    def test_message_file_refused_before_sending(self):
        big = "a" * (MAX + 1)
        # mode, --message-file, standard input after any password, what the one line says
        cases = [
            (None, self.message("big.txt", big), None, "message file %s is over the 8 KiB (8192 bytes)"),
            (None, "-", big, "message file - (standard input) is over the 8 KiB (8192 bytes)"),
            (None, "-", "x" * (10 * MAX), "message file - (standard input) is over the 8 KiB"),
            ("jan", "-", big, "message file - (standard input) is over the 8 KiB"),
            ("jan", self.message("big2.txt", big + "\n"), "", "is over the 8 KiB"),
            (None, self.message("nul.txt", b"away\0until May\n"), None, "holds a NUL byte"),
            (None, os.path.join(self.files, "missing.txt"), None, "cannot open message file"),
            (None, self.files, None, "cannot read message file"),
        ]
        for as_login, path, stdin, message in cases:
            with self.subTest(mode=as_login or "admin", file=os.path.basename(path), stdin=len(stdin or "")):
                if stdin is not None and as_login:
                    stdin = JAN + stdin
                self.refused(["vacation", "set", "m3@sv.lublin.pl", "--subject", "Away", "--message-file", path],
                             message.replace("%s", path), stdin=stdin, as_login=as_login)
        self.assertFalse(self.vacation("m3@sv.lublin.pl")["active"])
        # exactly 8 KiB is a message
        self.ok(["vacation", "set", "m3@sv.lublin.pl", "--subject", "Away", "--message-file",
                 self.message("8k.txt", "b" * MAX)])
        self.assertEqual(len(self.vacation("m3@sv.lublin.pl")["body"]), MAX)
        self.ok(["vacation", "off", "m3@sv.lublin.pl"])

    def test_usage_errors(self):
        f = self.message("short.txt", "Away.\n")
        box = "biuro@sv.lublin.pl"
        # arguments, mode, exit status, what the one line says
        cases = [
            (["forward", "add", box, "x@example.org", "--keep", "--no-keep"], None, 2, "--keep and --no-keep exclude"),
            (["forward", "add", box, "x@example.org", "--keep", "--no-keep"], "jan", 2, "exclude each other"),
            (["forward", "add", box], None, 2, "needs ADDRESS TARGET"),
            (["forward", "del", box], None, 2, "needs ADDRESS TARGET"),
            (["forward", "list"], None, 2, "needs ADDRESS"),
            (["vacation", "set", box, "--subject", "Away"], None, 2, "--subject TEXT and --message-file FILE"),
            (["vacation", "set", box, "--message-file", f], "jan", 2, "--subject TEXT and --message-file FILE"),
            (["vacation", "off", box, "extra"], None, 2, 'unexpected argument "extra"'),
            (["customer", "set", "sv", "colour", "red"], None, 2, 'unknown key "colour" for "customer set"'),
            (["customer", "set", "sv", "self-forward"], None, 2, "needs NAME KEY VALUE"),
            (["customer", "set", "sv", "self-forward", "on"], "jan", 2, "not available in self-service mode"),
            (["customer", "set", "sv", "self-forward", "maybe"], None, 1, 'on or off, not "maybe"'),
            (["vacation", "set", box, "--subject", "A", "--message-file", f, "--start", "1.7.2026"], None, 1,
             'invalid start date "1.7.2026": expected a date as YYYY-MM-DD'),
            (["vacation", "set", box, "--subject", "A", "--message-file", f, "--end", "2026-02-30"], None, 1,
             "2026-02-30"),
            (["vacation", "set", box, "--subject", "A", "--message-file", f, "--days", "0"], None, 1, "1 to 30"),
            (["vacation", "set", box, "--subject", "A", "--message-file", f, "--days", "-3"], None, 1,
             'invalid number of days "-3"'),
            (["vacation", "set", box, "--subject", "A", "--message-file", f, "--from-address",
              "kasa@sw.lublin.pl"], None, 1, "not an address of mailbox biuro@sv.lublin.pl"),
        ]
        for args, as_login, rc, message in cases:
            with self.subTest(args=" ".join(args), mode=as_login or "admin"):
                self.refused(args, message, stdin=JAN if as_login else None, as_login=as_login, rc=rc)

    def test_forward_add_list_del(self):
        box = "m1@sv.lublin.pl"
        self.assertEqual(self.forwards(box), [])
        self.assertEqual(self.ok(["forward", "list", box]), "target  keep\n")
        # option, the list after it: keeping a copy is one setting for all targets
        for target, opt, want in (
                ("a@example.org", [], [("a@example.org", True)]),
                ("B@Example.org", ["--no-keep"], [("a@example.org", False), ("b@example.org", False)]),
                ("c@example.org", ["--keep"], [("a@example.org", True), ("b@example.org", True),
                                              ("c@example.org", True)])):
            with self.subTest(target=target, opt=opt):
                self.assertEqual(self.ok(["forward", "add", box, target] + opt),
                                 "%s forwards to %s\n" % (box, target))
                self.assertEqual(self.forwards(box), want)
        self.assertIn("\na@example.org  yes\n", self.ok(["forward", "list", box]))
        self.assertEqual(self.forwards(box, as_login="jan"), self.forwards(box))
        for mailbox, target, message in (
                (box, "d@example.org", "R11: mailbox m1@sv.lublin.pl already forwards to 3 of 3"),
                (box, "a@example.org", "already forwards to a@example.org"),
                ("m2@sv.lublin.pl", "nosuch@sv.lublin.pl", 'unknown mailbox "nosuch@sv.lublin.pl"'),
                ("m2@sv.lublin.pl", "not an address", "is not a mail address")):
            with self.subTest(refused=target):
                self.refused(["forward", "add", mailbox, target], message)
        # a loop through another mailbox's forwarding
        self.ok(["forward", "add", "m2@sv.lublin.pl", "m3@sv.lublin.pl"])
        self.refused(["forward", "add", "m3@sv.lublin.pl", "m2@sv.lublin.pl"], "R11", "would loop")
        self.ok(["forward", "del", "m2@sv.lublin.pl", "m3@sv.lublin.pl"])
        self.assertEqual(self.ok(["forward", "del", box, "b@example.org"]),
                         "%s no longer forwards to b@example.org\n" % box)
        self.assertEqual(self.forwards(box), [("a@example.org", True), ("c@example.org", True)])
        self.refused(["forward", "del", box, "b@example.org"], "does not forward to b@example.org")
        self.refused(["forward", "list", "nosuch@sv.lublin.pl"], 'no mailbox "nosuch@sv.lublin.pl"')
        for t in ("a@example.org", "c@example.org"):
            self.ok(["forward", "del", box, t])
        self.assertEqual(self.forwards(box), [])

    def test_self_service_stays_in_own_mailboxes(self):
        f = self.message("other.txt", "Away.\n")
        self.ok(["vacation", "set", "biuro@sv.lublin.pl", "--subject", "Away", "--message-file", f])
        self.ok(["forward", "add", "biuro@sv.lublin.pl", "x@example.org"])
        try:
            # who, whose mailbox: jan's free account, jan's own mailbox, ewa's, a paid account
            for login, pw, box in (("ewa", EWA, "biuro@sv.lublin.pl"), ("ewa", EWA, "jan"),
                                   ("jan", JAN, "kasa@sw.lublin.pl"), ("jan", JAN, "sales@sv.lublin.pl")):
                for args in (["vacation", "show", box], ["vacation", "off", box],
                             ["vacation", "set", box, "--subject", "Mine now", "--message-file", f],
                             ["forward", "list", box], ["forward", "add", box, "spy@example.org"],
                             ["forward", "del", box, "x@example.org"]):
                    with self.subTest(login=login, args=" ".join(args)):
                        self.refused(args, "mailbox %s is not one of shell account %s's" % (box, login),
                                     stdin=pw, as_login=login)
            self.assertTrue(self.vacation("biuro@sv.lublin.pl")["active"])
            self.assertEqual(self.forwards("biuro@sv.lublin.pl"), [("x@example.org", True)])
            # the owner may
            self.assertTrue(self.vacation("biuro@sv.lublin.pl", as_login="jan")["active"])
            self.ok(["vacation", "off", "biuro@sv.lublin.pl"], stdin=JAN, as_login="jan")
            self.ok(["forward", "add", "jan", "y@example.org", "--no-keep"], stdin=JAN, as_login="jan")
            self.assertEqual(self.forwards("jan@" + self.primary), [("y@example.org", False)])
            self.ok(["forward", "del", "jan", "y@example.org"], stdin=JAN, as_login="jan")
        finally:
            self.ok(["forward", "del", "biuro@sv.lublin.pl", "x@example.org"])

    def test_self_forward_switch(self):
        box = "kadry@sv.lublin.pl"
        self.assertIs(json.loads(self.ok(["customer", "show", "sv", "--json"]))["self_forward"], True)
        self.assertEqual(self.ok(["customer", "set", "sv", "self-forward", "off"]), "customer sv: self-forward off\n")
        try:
            self.assertIs(json.loads(self.ok(["customer", "show", "sv", "--json"]))["self_forward"], False)
            self.refused(["forward", "add", box, "z@example.org"], "customer sv", "ask the administrator",
                         stdin=JAN, as_login="jan")
            # the administrator still may; the user still sees it and may stop it
            self.ok(["forward", "add", box, "z@example.org"])
            self.assertEqual(self.forwards(box, as_login="jan"), [("z@example.org", True)])
            self.ok(["forward", "del", box, "z@example.org"], stdin=JAN, as_login="jan")
            # vacation replies are not forwarding
            self.ok(["vacation", "set", box, "--subject", "Away", "--message-file", self.message("s.txt", "x\n")],
                    stdin=JAN, as_login="jan")
            self.ok(["vacation", "off", box], stdin=JAN, as_login="jan")
        finally:
            self.ok(["customer", "set", "sv", "self-forward", "on"])
        self.ok(["forward", "add", box, "z@example.org"], stdin=JAN, as_login="jan")
        self.ok(["forward", "del", box, "z@example.org"], stdin=JAN, as_login="jan")
        self.assertEqual(self.forwards(box), [])

    def test_audit_log(self):
        mine = "jan@" + self.primary
        f = self.message("audit.txt", "Away until May.\n")
        self.ok(["vacation", "set", "jan", "--subject", "Audited", "--message-file", f])
        self.ok(["forward", "add", "jan", "w@example.org"], stdin=JAN, as_login="jan")
        self.ok(["vacation", "off", "jan"], stdin=JAN, as_login="jan")
        self.ok(["forward", "del", "jan", "w@example.org"])
        self.ok(["customer", "set", "sv", "self-forward", "off"])
        self.ok(["customer", "set", "sv", "self-forward", "on"])
        log = [e for e in json.loads(self.ok(["log", "--object", mine, "--json", "--limit", "500"]))
               if e["kind"] == "sieve_rule"]
        self.assertTrue(log, "no change of a sieve_rule row is logged under %s" % mine)
        steps = [(e["actor"].split(":")[0], e["after"]["vacation_on"], e["after"]["forward_to"]) for e in log]
        # the rule row is made by the first change (empty), then changed by each
        self.assertEqual(steps[-5:], [("admin", False, []), ("admin", True, []), ("self", True, ["w@example.org"]),
                                      ("self", False, ["w@example.org"]), ("admin", False, [])], log)
        self.assertIn("self:jan", {e["actor"] for e in log})
        human = self.ok(["log", "--object", mine, "--since", "1 hour"])
        self.assertIn("forward_to: [] -> [\"w@example.org\"]", human)
        changes = [e["after"]["self_forward"] for e in json.loads(self.ok(["log", "--object", "sv", "--json"]))
                   if e["kind"] == "customer" and e["action"] == "update"]
        self.assertEqual(changes[-2:], [False, True])

    def test_help(self):
        out = self.ok(["--help"])
        nouns = [line.split()[0] for line in out.split("Nouns:\n", 1)[1].split("\n\n", 1)[0].splitlines()]
        self.assertLess(nouns.index("mailbox"), nouns.index("vacation"))
        self.assertLess(nouns.index("vacation"), nouns.index("forward"))
        for args, want in ((["vacation", "set", "--help"], ["--message-file FILE", "at most 8 KiB", "--from-address"]),
                           (["forward", "add", "--help"], ["--keep", "--no-keep", "self-service (--as LOGIN)"]),
                           (["customer", "set", "--help"], ["self-forward", "Modes: administrator\n"])):
            with self.subTest(args=args):
                out = self.ok(args)
                for w in want:
                    self.assertIn(w, out)


if __name__ == "__main__":
    unittest.main()
