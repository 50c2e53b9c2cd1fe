#!/usr/bin/env python3
"""test_panel_http: vmail-panel over HTTP against a private PostgreSQL — login (legacy hash
upgraded, unknown login and wrong password alike in words and timing), CSRF refusals (403),
session expiry (idle and absolute), throttling per login and per client address (429),
escaping of hostile names, the 6th alias refused with R1's words, free mail accounts and the
usage bar, own password, Polish, security headers, size limits, and the panel role's rights.
Out-of-office and forwarding (R11): the page of the own mailbox and of a free mail account,
switching the reply on and off and adding and removing targets (checked in vmail.sieve_rule),
the database's refusals (loops, the limit, forwarding switched off) in both languages, the
field limits (an 8 KiB text that fits however it is encoded, one byte more refused), other
accounts' mailboxes refused, CSRF, escaping.
Also: the client address believed only from configured proxies (and contrib/nginx itself in
front of the panel), log lines that client input cannot forge, and SIGTERM under login load.
Mail programs (issue 22): Thunderbird autoconfig and Outlook autodiscover answered by address
alone (every field, unknown mailboxes like known ones, foreign and pending domains 404, hostile
and oversized bodies 400/413, the Host header ignored, POP3 when offered, 503 without the
database, through nginx's autoconfig/autodiscover names), the Mail programs page and the Apple
profiles (plistlib; stable UUIDs, no password, only the customer's own mailboxes).

Environment: VMAIL_BUILD_DIR (default <repo>/build) holds vmail-panel.
Run: python3 -m unittest tests/e2e/test_panel_http.py -v
"""
import os
import http.client
import plistlib
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from panelworld import LOGINS, MiB, PASSWORD, Browser, PanelWorld, free_port, html_text  # noqa: E402

JAN = "jan@platon.man.lublin.pl"


class World(unittest.TestCase):
    """One panel for the tests that share the default settings."""

    @classmethod
    def setUpClass(cls):
        # nginx's way in too: a unix socket whose trusted peer (root, the tests) names the client
        cls.w = PanelWorld("panel_http", unix_socket=True, trusted_proxy_users="root").start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.w.stop()
        assert rc == 0, "vmail-panel exited %s:\n%s" % (rc, cls.w.log_text()[-3000:])

    def snapshot(self):
        return self.w.sql("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM "
                          "(SELECT address, self_service FROM vmail.alias UNION ALL "
                          " SELECT address || quota || password, NULL FROM vmail.mail_account UNION ALL "
                          " SELECT login || password, NULL FROM vmail.shell_account) t")

    def logged_in(self, login="jan", lang=None):
        b = Browser(self.w, lang=lang)
        r = b.login(login)
        self.assertEqual(r.status, 303, r.body)
        return b


class TestLogin(World):
    def test_redirects_and_headers(self):
        b = Browser(self.w)
        r = b.get("/")
        self.assertEqual((r.status, r.header("Location")), (303, "/login"))
        r = b.get("/login")
        self.assertEqual(r.status, 200)
        csp = r.header("Content-Security-Policy")
        for part in ("default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"):
            self.assertIn(part, csp)
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertIn('<label>Login <input name="login"', r.body)
        self.assertIn('<html lang="en">', r.body)
        css = b.get("/style.css")
        self.assertEqual(css.status, 200)
        self.assertTrue(css.header("Content-Type").startswith("text/css"))
        self.assertEqual(b.get("/nothing-here").status, 404)

    def test_login_logout_and_legacy_upgrade(self):
        self.assertTrue(self.w.sql("SELECT password FROM vmail.shell_account WHERE login = 'ewa'")
                        .startswith("{SHA512-CRYPT}"))
        b = Browser(self.w)
        b.jar["vmail_session"] = "f" * 64  # a planted session id is never promoted
        r = b.login("Ewa")
        self.assertEqual((r.status, r.header("Location")), (303, "/"))
        cookie = [c for c in r.cookies() if c.startswith("vmail_session=")][0]
        for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
            self.assertIn(attr, cookie)
        self.assertNotIn("Secure", cookie)  # cookie_secure = no in this world
        self.assertNotEqual(b.jar["vmail_session"], "f" * 64)
        self.assertTrue(self.w.sql("SELECT password FROM vmail.shell_account WHERE login = 'ewa'")
                        .startswith("{ARGON2ID}$argon2id$"))
        page = b.overview()
        self.assertIn("ewa@platon.man.lublin.pl", page.body)
        self.assertIn("acme.lublin.pl", page.body)
        self.assertIn("awaiting ownership proof", page.body)  # acme.com.pl
        # the upgraded hash still works; logout ends the session
        r = b.post("/logout", {"csrf": page.csrf()})
        self.assertEqual((r.status, r.header("Location")), (303, "/login?out=1"))
        self.assertEqual(b.get("/").header("Location"), "/login")
        self.assertEqual(Browser(self.w).login("ewa").status, 303)

    def test_alias_domains_listed_read_only(self):
        """Issue 20: the customer sees which of its domains mirror another, in both languages;
        the panel has no form to change it (an administrator's job)."""
        self.w.sql("SELECT vmail.domain_add('acme', 'acme-firma.pl');"
                   "SELECT vmail.domain_set_state('acme-firma.pl', 'active');"
                   "SELECT vmail.domain_alias('acme-firma.pl', 'acme.lublin.pl')")
        try:
            for lang, text in (("en", "Alias domain: mirrors every address of"),
                               ("pl", "Alias domeny: powiela każdy adres domeny")):
                with self.subTest(lang=lang):
                    body = self.logged_in("jan", lang=lang).overview().body
                    row = body[body.index("<td>acme-firma.pl</td>"):]
                    row = row[:row.index("</tr>")]
                    self.assertIn(text + ": <strong>acme.lublin.pl</strong>", row)
                    self.assertNotIn("alias_of", body)
                    self.assertNotIn("/domain", body)
        finally:
            self.w.sql("SELECT vmail.domain_unalias('acme-firma.pl');"
                       "SELECT vmail.domain_del('acme-firma.pl')")

    def test_unknown_and_wrong_look_the_same(self):
        b = Browser(self.w, real_ip="203.0.113.10")
        wrong = b.login("jan", "not-the-password")
        unknown = b.login("nobody", "not-the-password")
        bad_name = b.login("<b>x</b>", "x")
        for r in (wrong, unknown, bad_name):
            self.assertEqual(r.status, 401)
            self.assertEqual(r.errors(), ["Wrong login or password, or too many attempts. Try again later."])
            self.assertGreaterEqual(r.elapsed, 0.29)  # login_failure_delay = 300ms
        self.assertLess(abs(wrong.elapsed - unknown.elapsed), 0.15)
        self.assertNotIn("<b>x</b>", bad_name.body)
        self.assertIn("&lt;b&gt;x&lt;/b&gt;", bad_name.body)
        self.assertNotIn("vmail_session", b.jar)
        # the failures of this test must not lock jan out of the others
        Browser(self.w, real_ip="203.0.113.10").login("jan")


class TestLogInjection(World):
    def test_newline_in_login_makes_one_line(self):
        # a login that would forge a failed-login line of its own (CR and LF, %0D%0A on the wire)
        marker = "forged-7c1e"
        login = 'x\npanel: failed login for "%s" from 198.51.100.7\r\nz' % marker
        self.assertEqual(Browser(self.w).login(login, "bad").status, 401)
        lines = [l for l in self.w.log_text().splitlines() if marker in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^\S+Z vmail-panel\[notice\]: panel: failed login for "
                         r'"x\\x0apanel: failed login for "forged')
        self.assertIn("\\x0d\\x0az", lines[0])
        with open(self.w.log_path, "rb") as f:
            self.assertNotIn(b"\r", f.read())


class TestCSRF(World):
    def test_refused_with_403_and_nothing_changes(self):
        b = self.logged_in()
        good = b.overview().csrf()
        other = self.logged_in("ola").overview().csrf()  # (its first login upgrades its hash)
        before = self.snapshot()
        form = {"address": "csrf@acme.lublin.pl", "target": JAN}
        for token in (None, "", "0" * 64, good[:-1] + ("0" if good[-1] != "0" else "1")):
            f = dict(form)
            if token is not None:
                f["csrf"] = token
            r = b.post("/alias/add", f)
            self.assertEqual(r.status, 403, token)
            self.assertIn("This form has expired", r.body)
        # another user's token is no good either
        self.assertEqual(b.post("/alias/add", dict(form, csrf=other)).status, 403)
        # no session at all
        self.assertEqual(Browser(self.w).post("/alias/add", dict(form, csrf=good)).status, 403)
        # the login form has one too (signed, in a cookie and the form)
        fresh = Browser(self.w)
        self.assertEqual(fresh.post("/login", {"login": "jan", "password": PASSWORD}).status, 403)
        fresh.get("/login")
        self.assertEqual(fresh.post("/login", {"csrf": "00" * 40, "login": "jan",
                                               "password": PASSWORD}).status, 403)
        self.assertEqual(b.post("/logout", {"csrf": "0" * 64}).status, 403)
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(b.post("/alias/add", dict(form, csrf=good)).status, 303)
        b.post("/alias/del", {"csrf": good, "address": "csrf@acme.lublin.pl"})


class TestAliases(World):
    def test_sixth_alias_refused_and_admin_alias_read_only(self):
        self.w.sql("SELECT vmail.alias_add('boss@acme.lublin.pl', ARRAY['jan'], false, 'jan')")
        b = self.logged_in()
        page = b.overview()
        csrf = page.csrf()
        self.assertIn('id="alias-count">0 of 5<', page.body)
        for i in range(1, 6):
            r = b.post("/alias/add", {"csrf": csrf, "address": "a%d@acme.lublin.pl" % i, "target": JAN})
            self.assertEqual(r.status, 303, r.errors())
        page = b.overview()
        self.assertIn("The alias was added.", page.body)
        self.assertIn('id="alias-count">5 of 5<', page.body)
        before = self.snapshot()
        r = b.post("/alias/add", {"csrf": csrf, "address": "a6@acme.lublin.pl", "target": JAN})
        self.assertEqual(r.status, 422)
        self.assertEqual(r.errors(), ["R1: shell account jan already has 5 of 5 self-service aliases"])
        # the error sits next to the add form, which keeps what was typed
        self.assertRegex(r.body, r'id="alias-add-error">R1: [^<]*</p>\s*<form[^>]*action="/alias/add"')
        self.assertIn('value="a6@acme.lublin.pl"', r.body)
        self.assertEqual(self.snapshot(), before)
        # administrator alias: shown, read-only, not counted
        row = re.search(r"<tr><td>boss@acme.lublin.pl</td>.*?</tr>", b.overview().body, re.S).group(0)
        self.assertIn("set up by the administrator", row)
        self.assertNotIn("<form", row)
        r = b.post("/alias/del", {"csrf": csrf, "address": "boss@acme.lublin.pl"})
        self.assertEqual(r.status, 422)
        self.assertIn("was set up by the administrator", r.errors()[0])
        # change and delete one of ours
        self.w.sql("SELECT vmail.account_add('box@acme.lublin.pl', 'free', 'jan', NULL, %d)" % MiB)
        r = b.post("/alias/set", {"csrf": csrf, "address": "a1@acme.lublin.pl", "target": "box@acme.lublin.pl"})
        self.assertEqual(r.status, 303, r.errors())
        self.assertEqual(self.w.sql("SELECT vmail.lookup_alias('a1@acme.lublin.pl')"), "box@acme.lublin.pl")
        self.assertEqual(b.post("/alias/del", {"csrf": csrf, "address": "a5@acme.lublin.pl"}).status, 303)
        self.assertIn('id="alias-count">4 of 5<', b.overview().body)

    def test_hostile_alias_name_escaped(self):
        hostile = "q'onfocus='x&lt@acme.lublin.pl"
        b = self.logged_in("ola")
        csrf = b.overview().csrf()
        r = b.post("/alias/add", {"csrf": csrf, "address": hostile, "target": "ola"})
        self.assertEqual(r.status, 303, r.errors())
        page = b.overview()
        self.assertIn("q&#39;onfocus=&#39;x&amp;lt@acme.lublin.pl", page.body)
        self.assertNotIn("q'onfocus", page.body)
        # a refused one comes back in the database's words, escaped
        r = b.post("/alias/add", {"csrf": csrf, "address": '<script>alert(1)</script>@acme.lublin.pl',
                                  "target": "ola"})
        self.assertEqual(r.status, 422)
        self.assertNotIn("<script>", r.body)
        self.assertIn("&lt;script&gt;", r.body)
        self.assertIn('invalid address "<script>alert(1)</script>@acme.lublin.pl"', r.errors()[0])
        # and not executed in the form's value either
        self.assertIn('value="&lt;script&gt;alert(1)&lt;/script&gt;@acme.lublin.pl"', r.body)


class TestAccounts(World):
    def test_free_accounts_usage_bar_and_polish(self):
        b = self.logged_in("ewa", lang="pl-PL,pl;q=0.9,en;q=0.5")
        page = b.overview()
        self.assertIn('<html lang="pl">', page.body)
        self.assertIn("Nowe hasło", page.body)
        self.assertIn('id="account-count">0 z 5<', page.body)
        csrf = page.csrf()
        # ewa has no mail domain yet (R3 needs one): refused in Polish, with the rule's words
        r = b.post("/account/add", {"csrf": csrf, "address": "e1@acme.lublin.pl", "password": "mailpass1",
                                    "password2": "mailpass1", "quota": "20M"})
        self.assertEqual(r.status, 422)
        self.assertTrue(r.errors()[0].startswith("Darmowe konta muszą być w Twojej domenie poczty. Szczegóły: R3"),
                        r.errors())
        self.w.sql("SELECT vmail.shell_set('ewa', 'mail_domain', 'acme.lublin.pl')")
        # local checks: passwords differ, too short, bad size
        for form, want in (({"password2": "other-pass"}, "Nowe hasła różnią się."),
                           ({"password": "short", "password2": "short"}, "Hasło musi mieć od 8 do 256 znaków."),
                           ({"quota": "12X"}, "Podaj limit jako liczbę z K, M lub G, np. 100M.")):
            f = {"csrf": csrf, "address": "e1@acme.lublin.pl", "password": "mailpass1",
                 "password2": "mailpass1", "quota": "20M"}
            f.update(form)
            r = b.post("/account/add", f)
            self.assertEqual((r.status, r.errors()), (422, [want]))
        for i, q in ((1, "20M"), (2, "30M")):
            r = b.post("/account/add", {"csrf": csrf, "address": "e%d@acme.lublin.pl" % i,
                                        "password": "mailpass%d" % i, "password2": "mailpass%d" % i, "quota": q})
            self.assertEqual(r.status, 303, r.errors())
        # R5: quotas past the disk limit
        r = b.post("/account/add", {"csrf": csrf, "address": "e3@acme.lublin.pl", "password": "mailpass3",
                                    "password2": "mailpass3", "quota": "60M"})
        self.assertEqual(r.status, 422)
        self.assertIn("R5: shell account ewa", r.errors()[0])
        self.assertIn('value="e3@acme.lublin.pl"', r.body)
        self.assertNotIn("mailpass3", r.body)  # passwords are never sent back
        # usage: files, own mailbox and each free mailbox in the bar and its table
        self.w.sql(f"""
            SELECT vmail.usage_set_files('ewa', {15 * MiB});
            SELECT vmail.quota_set('ewa', {10 * MiB}, 40);
            SELECT vmail.quota_set('e1@acme.lublin.pl', {5 * MiB}, 7);""")
        page = b.overview()
        self.assertIn('id="account-count">2 z 5<', page.body)
        self.assertIn("Zajęte 30 MiB z 100 MiB", page.body)
        bar = re.search(r'<svg class="bar".*?</svg>', page.body, re.S).group(0)
        self.assertEqual(re.findall(r'<rect class="([^"]+)" x="(\d+)" y="0" width="(\d+)"', bar),
                         [("seg-files", "0", "150"), ("seg-mailbox", "150", "100"), ("seg-a0", "250", "50")])
        self.assertIn("Pliki", page.body)
        self.assertIn("Przydzielone darmowym kontom: 50 MiB", page.body)
        # password, resize, delete
        r = b.post("/account/passwd", {"csrf": csrf, "address": "e1@acme.lublin.pl", "password": "newmailpass"})
        self.assertEqual(r.status, 303, r.errors())
        self.assertTrue(self.w.sql("SELECT password FROM vmail.mail_account WHERE address = 'e1@acme.lublin.pl'")
                        .startswith("{ARGON2ID}"))
        self.assertEqual(b.post("/account/resize", {"csrf": csrf, "address": "e1@acme.lublin.pl",
                                                    "quota": "25M"}).status, 303)
        self.assertEqual(self.w.sql("SELECT quota FROM vmail.mail_account WHERE address = 'e1@acme.lublin.pl'"),
                         str(25 * MiB))
        r = b.post("/account/resize", {"csrf": csrf, "address": "e2@acme.lublin.pl", "quota": "80M"})
        self.assertEqual(r.status, 422)
        self.assertIn('id="account-err-1"', r.body)  # next to e2's row
        self.assertEqual(b.post("/account/del", {"csrf": csrf, "address": "e2@acme.lublin.pl"}).status, 303)
        page = b.overview()
        self.assertIn("Usunięto konto pocztowe.", page.body)
        self.assertIn('id="account-count">1 z 5<', page.body)
        # switching the language by link sticks in a cookie
        self.assertEqual(b.get("/lang/en").status, 303)
        self.assertIn('<html lang="en">', b.overview().body)

    def test_own_password(self):
        b = self.logged_in("jan")
        other = self.logged_in("jan")
        csrf = b.overview().csrf()
        before = self.snapshot()
        r = b.post("/passwd", {"csrf": csrf, "current": "wrong-one", "password": "newjanpass",
                               "password2": "newjanpass"})
        self.assertEqual((r.status, r.errors()), (422, ["The current password is wrong."]))
        self.assertEqual(self.snapshot(), before)
        r = b.post("/passwd", {"csrf": csrf, "current": PASSWORD, "password": "newjanpass",
                               "password2": "newjanpass"})
        self.assertEqual(r.status, 303, r.errors())
        self.assertIn("Your password was changed.", b.overview().body)
        self.assertEqual(other.get("/").status, 303)  # other sessions of jan ended
        self.assertEqual(Browser(self.w).login("jan").status, 401)
        self.assertEqual(Browser(self.w).login("jan", "newjanpass").status, 303)
        self.w.sql("UPDATE vmail.shell_account SET password = (SELECT password FROM vmail.shell_account "
                   "WHERE login = 'ola') WHERE login = 'jan'")


class TestLimits(World):
    def test_bounded_requests(self):
        b = self.logged_in("ola")
        csrf = b.overview().csrf()
        r = b.request("POST", "/alias/add", raw_body=b"csrf=" + b"a" * 20000,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 413)
        self.assertIn("The form was too large and was not accepted.", r.body)
        r = b.request("POST", "/alias/add", raw_body=("csrf=%s&address=x%%00y" % csrf).encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 400)
        r = b.request("POST", "/alias/add", raw_body=b"{}", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 415)
        r = b.get("/?" + "x" * 5000)
        self.assertIn(r.status, (400, 414))
        r = b.get("/", headers={"X-Big": "y" * 9000})
        self.assertIn(r.status, (400, 413, 431))
        self.assertEqual(b.get("/alias/add").status, 405)
        self.assertIn(b.request("PUT", "/").status, (405, 501))


OWN = "jan@platon.man.lublin.pl"
BOX = "box@acme.lublin.pl"


def rules_url(address):
    return "/mailbox/rules?address=" + urllib.parse.quote(address, safe="@")


class TestMailboxRules(World):
    """Out-of-office and forwarding of jan's own mailbox and of his free mail account box."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.w.sql(f"SELECT vmail.account_add('{BOX}', 'free', 'jan', NULL, {MiB});"
                  f"SELECT vmail.account_add('olabox@acme.lublin.pl', 'free', 'ola', NULL, {MiB});"
                  f"SELECT vmail.alias_add('info@acme.lublin.pl', ARRAY['jan'], false, 'jan')")

    def tearDown(self):
        self.w.sql("DELETE FROM vmail.sieve_rule; SELECT vmail.customer_set('acme', 'self_forward', 'on')")

    def rule(self, address):
        """The rule row of a mailbox as text ("-" when it has none)."""
        return self.w.sql(
            "SELECT coalesce((SELECT (r.vacation_on, r.vacation_subject, r.vacation_body, r.vacation_start,"
            " r.vacation_end, r.vacation_days, r.vacation_from, r.forward_to, r.forward_keep)::text"
            " FROM vmail.sieve_rule r, vmail.mailbox_of('%s') m"
            " WHERE r.shell_account_id = m.shell_id OR r.mail_account_id = m.account_id), '-')" % address)

    def rules(self):
        """Every rule row, to show that a refused change changed nothing."""
        return self.w.sql("SELECT coalesce(string_agg(r::text, ';' ORDER BY id), '') FROM vmail.sieve_rule r")

    def page(self, b, address, status=200):
        r = b.get(rules_url(address))
        self.assertEqual(r.status, status, r.body)
        return r

    def vacation(self, address, **fields):
        form = {"address": address, "subject": "Away", "body": "I am away.", "start": "", "end": "",
                "days": "7", "from": address}
        form.update(fields)
        return form

    def test_pages_linked_from_the_overview(self):
        b = self.logged_in("jan")
        body = b.overview().body
        for i, address in enumerate((OWN, BOX)):
            self.assertRegex(body, r'<a class="rules" id="rules-link-%d" href="%s"' % (i, re.escape(rules_url(address))))
        for address, kind in ((OWN, "your own mailbox (shell account)"), (BOX, "mail account")):
            with self.subTest(address=address):
                r = self.page(b, address)
                self.assertEqual(r.header("Cache-Control"), "no-store")
                self.assertIn("<h1>Out-of-office and forwarding</h1>", r.body)
                self.assertIn('<dd id="rules-address">%s <span class="count">%s</span>' % (address, kind), r.body)
                self.assertIn("The out-of-office reply is off.", r.body)
                self.assertIn("This mailbox forwards no mail.", r.body)
                for action in ("/mailbox/vacation", "/mailbox/forward/add"):
                    form = re.search(r'<form[^>]*action="%s".*?</form>' % action, r.body, re.S).group(0)
                    self.assertIn('name="csrf" value="%s"' % r.csrf(), form)
                    self.assertIn('name="address" value="%s"' % address, form)
                self.assertIn('<input type="date" name="start"', r.body)
                self.assertIn('name="days" id="vacation-days" required min="1" max="30" step="1" value="7"', r.body)
                self.assertIn('maxlength="200"', r.body)
                self.assertRegex(r.body, r'<input type="checkbox" name="keep" value="on" id="forward-keep"[^>]* checked>')
                self.assertIn("A mailbox that forwards without keeping a copy still has to have room", r.body)
        # the reply's From: every address that delivers to the mailbox, its own chosen
        r = self.page(b, OWN)
        self.assertEqual(re.findall(r'<option value="([^"]*)"( selected)?>', r.body),
                         [("info@acme.lublin.pl", ""), (OWN, " selected")])
        # logged out, or without a mailbox
        self.assertEqual(Browser(self.w).get(rules_url(OWN)).header("Location"), "/login")
        for query in ("", "?address=", "?addr=" + OWN, "?address=%zz"):
            self.assertEqual(b.get("/mailbox/rules" + query).status, 404, query)

    def test_vacation_on_and_off(self):
        b = self.logged_in("jan")
        csrf = self.page(b, BOX).csrf()
        r = b.post("/mailbox/vacation", dict(self.vacation(BOX, subject="Urlop", body="Wracam 15 lipca.\r\nJan",
                                                           start="2026-07-01", end="2026-07-14", days="3"),
                                             csrf=csrf))
        self.assertEqual((r.status, r.header("Location")), (303, rules_url(BOX)), r.errors())
        self.assertEqual(self.rule(BOX), '(t,Urlop,"Wracam 15 lipca.\nJan",2026-07-01,2026-07-14,3,%s,{},t)' % BOX)
        r = self.page(b, BOX)
        self.assertIn('<p class="notice" role="status">The out-of-office reply was saved and is on.</p>', r.body)
        self.assertIn("The out-of-office reply is on from 2026-07-01 to 2026-07-14 (the last day).", r.body)
        self.assertIn('id="vacation-subject" required maxlength="200" value="Urlop"', r.body)
        self.assertIn('id="vacation-body" required rows="8" maxlength="8192">\nWracam 15 lipca.\nJan</textarea>',
                      r.body)
        self.assertIn('name="end" id="vacation-end" value="2026-07-14"', r.body)
        self.assertNotIn("was saved", self.page(b, BOX).body)  # the confirmation is shown once
        # open dates and the defaults: the database's NULLs
        r = b.post("/mailbox/vacation", dict(self.vacation(OWN, days="", **{"from": ""}), csrf=csrf))
        self.assertEqual(r.status, 303, r.errors())
        self.assertEqual(self.rule(OWN), "(t,Away,\"I am away.\",,,7,,{},t)")
        self.assertIn("The out-of-office reply is on, with no end date.", self.page(b, OWN).body)
        # off: the texts stay for the next time
        r = b.post("/mailbox/vacation/off", {"csrf": csrf, "address": BOX})
        self.assertEqual((r.status, r.header("Location")), (303, rules_url(BOX)))
        self.assertTrue(self.rule(BOX).startswith("(f,Urlop,"), self.rule(BOX))
        r = self.page(b, BOX)
        self.assertIn("The out-of-office reply was switched off.", r.body)
        self.assertIn("The out-of-office reply is off.", r.body)
        self.assertNotIn('action="/mailbox/vacation/off"', r.body)
        self.assertIn('value="Urlop"', r.body)

    def test_vacation_field_limits(self):
        b = self.logged_in("jan")
        csrf = self.page(b, OWN).csrf()
        # 8 KiB of Polish letters with a browser's CRLF line ends: three times that on the wire
        line = "ąęółśżźćń" * 4 + "\r\n"
        stored = len(line.replace("\r\n", "\n").encode())
        text = line * (8192 // stored)
        text += "x" * (8192 - len(text.replace("\r\n", "\n").encode()))
        form = dict(self.vacation(OWN, body=text), csrf=csrf)
        self.assertGreater(len(urllib.parse.urlencode(form)), 3 * 8192)
        r = b.post("/mailbox/vacation", form)
        self.assertEqual(r.status, 303, r.errors())
        self.assertEqual(self.w.sql("SELECT octet_length(vacation_body) FROM vmail.sieve_rule"), "8192")
        before = self.rules()
        for fields, error in (({"body": text + "y"}, "The text may have at most 8 KiB (8192 bytes)."),
                              ({"subject": "ż" * 201}, "The subject may have at most 200 characters."),
                              ({"start": "2026-02-30"}, "Give a date as year-month-day, e.g. 2026-07-01."),
                              ({"end": "14.07.2026"}, "Give a date as year-month-day, e.g. 2026-07-01."),
                              ({"days": "31"}, "Give the days between replies as a whole number from 1 to 30."),
                              ({"days": "1e1"}, "Give the days between replies as a whole number from 1 to 30."),
                              ({"subject": ""}, "Fill in every field."),
                              ({"from": "x" * 300}, "An address may have at most 254 characters."),
                              # the database's own checks, in its words
                              ({"start": "2026-07-14", "end": "2026-07-01"},
                               "the out-of-office ends (2026-07-01) before it starts (2026-07-14)"),
                              ({"from": "ola@platon.man.lublin.pl"},
                               "ola@platon.man.lublin.pl is not an address of mailbox %s" % OWN),
                              ({"subject": "two\nlines"},
                               "the out-of-office subject is one line without control characters")):
            with self.subTest(fields=list(fields)):
                r = b.post("/mailbox/vacation", dict(self.vacation(OWN, **fields), csrf=csrf))
                self.assertEqual(r.status, 422, r.body[:300])
                self.assertTrue(r.errors() and r.errors()[0].startswith(error), r.errors())
                # next to the form, which keeps what was typed
                self.assertRegex(r.body, r'id="vacation-error">[^<]*</p>\s*<form[^>]*action="/mailbox/vacation"')
        r = b.post("/mailbox/vacation", dict(self.vacation(OWN, body=text + "y", subject="Urlop"), csrf=csrf))
        self.assertIn('value="Urlop"', r.body)  # what was typed, not what is stored
        self.assertTrue(r.body.split("</textarea>")[0].endswith("xy"))
        self.assertEqual(self.rules(), before)
        # a form larger than any the page can send: 413 with a sentence, not the HTTP library's page
        r = b.post("/mailbox/vacation", dict(self.vacation(OWN, body="ż" * 12000), csrf=csrf))
        self.assertEqual(r.status, 413)
        self.assertIn("The form was too large and was not accepted.", r.body)
        self.assertEqual(r.header("Content-Security-Policy")[:18], "default-src 'none'")
        self.assertEqual(self.rules(), before)

    def test_forwarding_add_and_remove(self):
        b = self.logged_in("jan")
        csrf = self.page(b, OWN).csrf()
        for target, keep in (("jan.kowalski@example.org", True), ("Box@ACME.lublin.pl", False)):
            form = {"csrf": csrf, "address": OWN, "target": target}
            if keep:
                form["keep"] = "on"
            r = b.post("/mailbox/forward/add", form)
            self.assertEqual((r.status, r.header("Location")), (303, rules_url(OWN)), r.errors())
        # the keep flag is the mailbox's: the last add left it off
        self.assertEqual(self.rule(OWN), "(f,,,,,7,,\"{jan.kowalski@example.org,box@acme.lublin.pl}\",f)")
        r = self.page(b, OWN)
        self.assertIn("The forwarding address was added.", r.body)
        self.assertEqual(re.findall(r"<tr><td>([^<]*)</td>", r.body), ["jan.kowalski@example.org", BOX])
        self.assertIn("No copy is kept: mail is only forwarded.", r.body)
        self.assertRegex(r.body, r'<input type="checkbox" name="keep" value="on" id="forward-keep"[^>]*"> ')
        self.assertIn("This choice applies to every forwarding address of the mailbox.", r.body)
        r = b.post("/mailbox/forward/del", {"csrf": csrf, "address": OWN, "target": "jan.kowalski@example.org"})
        self.assertEqual((r.status, r.header("Location")), (303, rules_url(OWN)), r.errors())
        self.assertEqual(self.rule(OWN), "(f,,,,,7,,{box@acme.lublin.pl},f)")
        self.assertIn("The forwarding address was removed.", self.page(b, OWN).body)
        # removing one that is not there: the database's words, nothing changes
        before = self.rules()
        r = b.post("/mailbox/forward/del", {"csrf": csrf, "address": OWN, "target": "gone@example.org"})
        self.assertEqual((r.status, r.errors()), (422, ["mailbox %s does not forward to gone@example.org" % OWN]))
        self.assertIn('id="forward-del-error"', r.body)
        self.assertEqual(self.rules(), before)
        r = b.post("/mailbox/forward/del", {"csrf": csrf, "address": OWN, "target": BOX})
        self.assertEqual(r.status, 303)
        self.assertEqual(self.rule(OWN), "-")  # a row that holds nothing goes

    def test_loop_and_limit_refused_in_the_databases_words(self):
        b = self.logged_in("jan")
        csrf = self.page(b, OWN).csrf()
        self.assertEqual(b.post("/mailbox/forward/add", {"csrf": csrf, "address": OWN, "target": BOX,
                                                         "keep": "on"}).status, 303)
        before = self.rules()
        loop = ("R11: forwarding %s to %s would loop: mail to %s comes back to %s" % (BOX, OWN, OWN, BOX))
        r = b.post("/mailbox/forward/add", {"csrf": csrf, "address": BOX, "target": OWN, "keep": "on"})
        self.assertEqual((r.status, r.errors()), (422, [loop]))
        self.assertRegex(r.body, r'id="forward-add-error">R11: [^<]*</p>\s*<form[^>]*action="/mailbox/forward/add"')
        self.assertIn('id="forward-target" required maxlength="254" autocomplete="off" spellcheck="false" '
                      'value="%s"' % OWN, r.body)
        # in Polish: a translated summary, then the database's sentence
        pl = self.logged_in("jan", lang="pl")
        r = pl.post("/mailbox/forward/add", {"csrf": self.page(pl, BOX).csrf(), "address": BOX, "target": OWN,
                                             "keep": "on"})
        self.assertEqual((r.status, r.errors()), (422, ["To koliduje z istniejącymi danymi. Szczegóły: " + loop]))
        self.assertIn('<html lang="pl">', r.body)
        self.assertIn("Dodaj adres przekazywania", r.body)
        self.assertEqual(self.rules(), before)
        # the limit: forward_limit targets (3), then the next is refused
        for i in (2, 3):
            r = b.post("/mailbox/forward/add", {"csrf": csrf, "address": OWN, "target": "t%d@example.org" % i,
                                                "keep": "on"})
            self.assertEqual(r.status, 303, r.errors())
        before = self.rules()
        r = b.post("/mailbox/forward/add", {"csrf": csrf, "address": OWN, "target": "t4@example.org", "keep": "on"})
        self.assertEqual((r.status, r.errors()),
                         (422, ["R11: mailbox %s already forwards to 3 of 3 addresses" % OWN]))
        self.assertEqual(self.rules(), before)
        # a hosted address that does not exist, and something that is no address
        for target, words in (("nobody@acme.lublin.pl", 'unknown mailbox "nobody@acme.lublin.pl"'),
                              ("not an address", '"not an address" is not a mail address to forward to')):
            r = b.post("/mailbox/forward/add", {"csrf": csrf, "address": BOX, "target": target, "keep": "on"})
            self.assertEqual(r.status, 422)
            self.assertTrue(r.errors()[0].startswith(words), r.errors())
        self.assertEqual(self.rules(), before)

    def test_forwarding_switched_off_by_the_administrator(self):
        b = self.logged_in("jan")
        csrf = self.page(b, OWN).csrf()
        self.assertEqual(b.post("/mailbox/forward/add", {"csrf": csrf, "address": OWN, "target": "a@example.org",
                                                         "keep": "on"}).status, 303)
        self.w.sql("SELECT vmail.customer_set('acme', 'self_forward', 'off')")
        before = self.rules()
        r = b.post("/mailbox/forward/add", {"csrf": csrf, "address": OWN, "target": "b@example.org", "keep": "on"})
        self.assertEqual((r.status, r.errors()), (422, [
            "forwarding is set by the administrator for customer acme; ask the administrator"]))
        self.assertEqual(self.rules(), before)
        # what is switched off is sending mail elsewhere, not stopping it
        r = b.post("/mailbox/forward/del", {"csrf": csrf, "address": OWN, "target": "a@example.org"})
        self.assertEqual(r.status, 303, r.errors())
        self.assertEqual(self.rule(OWN), "-")

    def test_another_accounts_mailbox_refused(self):
        b = self.logged_in("jan")
        csrf = self.page(b, OWN).csrf()
        ola = self.logged_in("ola")
        self.assertEqual(ola.post("/mailbox/forward/add", {"csrf": self.page(ola, "olabox@acme.lublin.pl").csrf(),
                                                           "address": "olabox@acme.lublin.pl",
                                                           "target": "x@example.org", "keep": "on"}).status, 303)
        before = self.rules()
        for address in ("ola@platon.man.lublin.pl", "olabox@acme.lublin.pl", "ola", "info@acme.lublin.pl",
                        "nobody@acme.lublin.pl", "<script>@acme.lublin.pl"):
            with self.subTest(address=address):
                r = self.page(b, address, status=403)
                self.assertIn("This is not one of your mailboxes.", r.body)
                self.assertNotIn("<script>", r.body)
                self.assertNotIn("x@example.org", r.body)
                for path, form in (("/mailbox/vacation", self.vacation(address)),
                                   ("/mailbox/vacation/off", {"address": address}),
                                   ("/mailbox/forward/add", {"address": address, "target": "y@example.org"}),
                                   ("/mailbox/forward/del", {"address": address, "target": "x@example.org"})):
                    r = b.post(path, dict(form, csrf=csrf))
                    self.assertEqual(r.status, 403, (path, r.body[:300]))
                    self.assertIn("This is not one of your mailboxes.", r.body)
        self.assertEqual(self.rules(), before)
        self.assertEqual(self.rule("olabox@acme.lublin.pl"), "(f,,,,,7,,{x@example.org},t)")

    def test_csrf_refused(self):
        b = self.logged_in("jan")
        good = self.page(b, OWN).csrf()
        other = self.page(self.logged_in("ola"), "ola@platon.man.lublin.pl").csrf()
        for path, form in (("/mailbox/vacation", self.vacation(OWN)),
                           ("/mailbox/vacation/off", {"address": OWN}),
                           ("/mailbox/forward/add", {"address": OWN, "target": "y@example.org", "keep": "on"}),
                           ("/mailbox/forward/del", {"address": OWN, "target": "y@example.org"})):
            for token in (None, "", "0" * 64, other):
                with self.subTest(path=path, token=token):
                    f = dict(form)
                    if token is not None:
                        f["csrf"] = token
                    r = b.post(path, f)
                    self.assertEqual(r.status, 403)
                    self.assertIn("This form has expired", r.body)
            self.assertEqual(Browser(self.w).post(path, dict(form, csrf=good)).status, 403)
            self.assertEqual(b.get(path).status, 405)
        self.assertEqual(self.rules(), "")

    def test_html_escaped(self):
        b = self.logged_in("jan")
        csrf = self.page(b, OWN).csrf()
        subject = "<b>\"Away\"</b> & 'back'"
        body = "</textarea><script>alert(1)</script>"
        r = b.post("/mailbox/vacation", dict(self.vacation(OWN, subject=subject, body=body), csrf=csrf))
        self.assertEqual(r.status, 303, r.errors())
        r = self.page(b, OWN)
        self.assertIn('value="&lt;b&gt;&quot;Away&quot;&lt;/b&gt; &amp; &#39;back&#39;"', r.body)
        self.assertIn("&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;</textarea>", r.body)
        self.assertNotIn("<script>", r.body)
        self.assertNotIn("<b>", r.body)
        # a refused target comes back escaped too
        r = b.post("/mailbox/forward/add", {"csrf": csrf, "address": OWN, "target": '"><img src=x>@acme.lublin.pl'})
        self.assertEqual(r.status, 422)
        self.assertNotIn("<img", r.body)
        self.assertIn('value="&quot;&gt;&lt;img src=x&gt;@acme.lublin.pl"', r.body)


class TestPanelRole(World):
    def test_role_may_only_self_serve(self):
        for sql in ("SELECT count(*) FROM vmail.shell_account",
                    "SELECT vmail.alias_add('x@acme.lublin.pl', ARRAY['jan'], false, 'jan')",
                    "SELECT vmail.shell_set('jan', 'disk_limit', '1')",
                    "UPDATE vmail.shell_account SET disk_limit = 1"):
            ok, out = self.w.sql_as_panel(sql)
            self.assertFalse(ok, sql)
            self.assertIn("permission denied", out)
        # no password hash for the panel's role, neither from a table nor from a function
        for sql in ("SELECT password FROM vmail.shell_account LIMIT 1",
                    "SELECT password FROM vmail.mail_account LIMIT 1",
                    "SELECT vmail.self_auth('jan')"):
            ok, out = self.w.sql_as_panel(sql)
            self.assertFalse(ok, f"{sql}: {out}")
        # the database's session is the panel's key: a made-up token opens nothing
        ok, out = self.w.sql_as_panel("SELECT vmail.self_alias_add('%s', 'forged@acme.lublin.pl', 'jan')"
                                      % ("ab" * 32))
        self.assertFalse(ok, out)
        self.assertIn("VM401", out)
        # the audit log has the login and the client address (from the trusted proxy) of changes
        b = self.logged_in("ola")
        b.real_ip = "198.51.100.23"
        b.unix = True
        r = b.post("/alias/add", {"csrf": b.overview().csrf(), "address": "audit@acme.lublin.pl", "target": "ola"})
        self.assertEqual(r.status, 303)
        self.assertEqual(self.w.sql("SELECT actor || ' ' || client FROM vmail.audit_log "
                                    "WHERE object = 'audit@acme.lublin.pl' AND object_kind = 'alias'"),
                         "self:ola 198.51.100.23")


class TestDatabaseSessions(World):
    """The database issues and ends sessions: the panel holds a token, not a login."""

    def sessions(self, login):
        return int(self.w.sql("SELECT count(*) FROM vmail.self_session x JOIN vmail.shell_account s"
                              f" ON s.id = x.shell_account_id WHERE s.login = '{login}'"))

    def test_login_opens_and_logout_closes_a_database_session(self):
        before = self.sessions("ola")
        b = Browser(self.w, real_ip="198.51.100.41", unix=True)
        self.assertEqual(b.login("ola").status, 303)
        self.assertEqual(self.sessions("ola"), before + 1)
        self.assertIn("self:ola 198.51.100.41", self.w.sql(
            "SELECT actor || ' ' || client FROM vmail.audit_log WHERE action = 'login'"))
        r = b.post("/logout", {"csrf": b.overview().csrf()})
        self.assertEqual((r.status, r.header("Location")), (303, "/login?out=1"))
        self.assertEqual(self.sessions("ola"), before)

    def test_reset_and_suspension_end_a_live_session(self):
        old = self.w.sql("SELECT password FROM vmail.shell_account WHERE login = 'ola'")
        for end, undo in ((f"SELECT vmail.shell_set('ola', 'password', '{{SHA512-CRYPT}}$6$reset$x')",
                           f"SELECT vmail.shell_set('ola', 'password', '{old}')"),
                          ("SELECT vmail.shell_set('ola', 'state', 'suspended')",
                           "SELECT vmail.shell_set('ola', 'state', 'active')")):
            with self.subTest(end=end):
                b = self.logged_in("ola")
                self.assertEqual(b.overview().status, 200)
                self.w.sql(end)
                try:
                    r = b.get("/")
                    self.assertEqual((r.status, r.header("Location")), (303, "/login"))
                    # and the browser's session is gone from the panel too
                    self.assertEqual(b.get("/").header("Location"), "/login")
                finally:
                    self.w.sql(undo)
        # a change sent with the ended session changes nothing
        b = self.logged_in("ola")
        csrf = b.overview().csrf()
        before = self.snapshot()
        self.w.sql(f"SELECT vmail.shell_set('ola', 'password', '{{SHA512-CRYPT}}$6$reset$x')")
        self.w.sql(f"SELECT vmail.shell_set('ola', 'password', '{old}')")
        r = b.post("/alias/add", {"csrf": csrf, "address": "late@acme.lublin.pl", "target": "ola"})
        self.assertEqual((r.status, r.header("Location")), (303, "/login"))
        self.assertEqual(self.snapshot(), before)


class TestSessionExpiry(unittest.TestCase):
    def setUp(self):
        self.w = PanelWorld("panel_expiry", session_idle_timeout="1s", session_max_age="3s",
                            cookie_secure="yes").start()

    def tearDown(self):
        self.assertEqual(self.w.stop(), 0)

    def test_idle_and_absolute(self):
        b = Browser(self.w)
        r = b.login("jan")
        self.assertEqual(r.status, 303)
        self.assertIn("; Secure", [c for c in r.cookies() if c.startswith("vmail_session=")][0])
        self.assertEqual(b.get("/").status, 200)
        time.sleep(1.2)
        r = b.get("/")
        self.assertEqual((r.status, r.header("Location")), (303, "/login?expired=1"))
        self.assertIn("Your session has expired", b.get("/login?expired=1").body)
        # active all the time, still ends after session_max_age
        self.assertEqual(b.login("jan").status, 303)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.7:
            self.assertEqual(b.get("/").status, 200)
            time.sleep(0.4)
        time.sleep(max(0, 3.1 - (time.monotonic() - t0)))
        self.assertEqual(b.get("/").header("Location"), "/login?expired=1")
        # a change posted after expiry is not applied
        r = b.post("/alias/add", {"csrf": "0" * 64, "address": "late@acme.lublin.pl", "target": "jan"})
        self.assertIn(r.status, (303, 403))
        self.assertEqual(self.w.sql("SELECT count(*) FROM vmail.alias WHERE address = 'late@acme.lublin.pl'"), "0")


NOBODY = 65534


class TestThrottling(unittest.TestCase):
    """The panel listens on loopback and on a unix socket (mode 0666 here, so that another
    uid can connect too); only root, the test's uid, is a trusted proxy on the socket."""

    def setUp(self):
        # A window far longer than the test: each failed login is two database calls and a
        # hash, and 30 of them on a loaded machine must never outlast it.
        self.w = PanelWorld("panel_throttle", unix_socket=True, login_failure_delay="20ms",
                            throttle_window="10m", panel_socket_mode="0666",
                            trusted_proxy_users="root").start()
        os.chmod(self.w.dir, 0o711)  # let nobody reach the socket

    def tearDown(self):
        self.assertEqual(self.w.stop(), 0)

    def proxied(self, ip):
        return Browser(self.w, real_ip=ip, unix=True)

    def test_per_login_and_per_address(self):
        # per login: 5 failures, then even the right password is refused with the same words
        for i in range(5):
            self.assertEqual(self.proxied("203.0.113.%d" % (i + 1)).login("ola", "bad").status, 401)
        r = self.proxied("203.0.113.99").login("ola")
        self.assertEqual(r.status, 429)
        self.assertEqual(r.errors(), ["Wrong login or password, or too many attempts. Try again later."])
        self.assertEqual(self.proxied("203.0.113.99").login("jan").status, 303)
        # per forwarded client address: 20 failures over many logins, then that address is refused
        for i in range(20):
            self.assertEqual(self.proxied("192.0.2.7").login("user%d" % i, "bad").status, 401)
        self.assertEqual(self.proxied("192.0.2.7").login("ewa").status, 429)
        self.assertEqual(self.proxied("192.0.2.8").login("ewa").status, 303)
        self.assertIn('failed login for "user0" from 192.0.2.7', self.w.log_text())

    def assert_header_ignored(self, make_browser, peer):
        # 30 failures, each naming another client: all count against the real peer
        statuses = [make_browser("198.51.100.%d" % (i + 1)).login("user%d" % i, "bad").status
                    for i in range(30)]
        self.assertEqual(statuses, [401] * 20 + [429] * 10)
        self.assertEqual(make_browser("198.51.100.200").login("jan").status, 429)
        log = self.w.log_text()
        self.assertIn('failed login for "user0" from %s' % peer, log)
        self.assertNotIn("from 198.51.100.", log)
        # the forwarded addresses of the trusted proxy are not touched
        self.assertEqual(self.proxied("198.51.100.1").login("jan").status, 303)

    def test_loopback_is_no_proxy_by_default(self):
        self.assert_header_ignored(lambda ip: Browser(self.w, real_ip=ip), "127.0.0.1")

    def test_untrusted_uid_on_the_socket(self):
        self.assert_header_ignored(lambda ip: Browser(self.w, real_ip=ip, unix=True, euid=NOBODY),
                                   "local")


class TestThrottleWindow(unittest.TestCase):
    def setUp(self):
        self.w = PanelWorld("panel_throttle_window", login_failure_delay="20ms",
                            throttle_window="6s", throttle_login_failures="1").start()

    def tearDown(self):
        self.assertEqual(self.w.stop(), 0)

    def test_the_window_passes(self):
        self.assertEqual(Browser(self.w).login("ola", "bad").status, 401)
        # The window opened when the failure was counted, before this answer; a clock read
        # before the request let a slow login push the window's end past the last retry.
        t0 = time.monotonic()
        self.assertEqual(Browser(self.w).login("ola").status, 429)
        time.sleep(max(0, 6.1 - (time.monotonic() - t0)))
        self.assertEqual(Browser(self.w).login("ola").status, 303)


class TestShutdownUnderLoad(unittest.TestCase):
    """SIGTERM while logins are in flight in both worker pools.  The panel must answer or
    drop them and exit 0; under an ASan build (VMAIL_BUILD_DIR) a use-after-free of a pool
    would print an AddressSanitizer report into the log."""

    def test_sigterm_with_logins_in_flight(self):
        # the window is a database job finishing during teardown: a few rounds make it likely
        for round in range(3):
            with self.subTest(round=round):
                self.stop_under_load("panel_shutdown%d" % round)

    def stop_under_load(self, name):
        w = PanelWorld(name, login_failure_delay="0ms", panel_hash_workers="2",
                       panel_db_workers="8", throttle_login_failures="100000",
                       throttle_address_failures="100000")
        w.start()
        stop = threading.Event()
        started = threading.Semaphore(0)

        def client(n):
            while not stop.is_set():
                try:
                    b = Browser(w)
                    page = b.get("/login")
                    started.release()
                    b.post("/login", {"csrf": page.csrf(), "login": LOGINS[n % 3],
                                      "password": PASSWORD if n % 2 else "bad"})
                except (OSError, http.client.HTTPException):
                    return  # the panel went away under us: expected

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(32)]
        try:
            for t in threads:
                t.start()
            for _ in range(150):  # enough logins under way that both pools are busy
                started.acquire(timeout=30)
        finally:
            rc = w.stop()
            stop.set()
            for t in threads:
                t.join(30)
        log = w.log_text()
        for report in ("AddressSanitizer", "LeakSanitizer", "runtime error"):
            self.assertFalse(report in log, log[log.find(report) - 200:][:4000])
        self.assertEqual(rc, 0, log[-4000:])


TB_PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")
AD_PATHS = ("/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml")
AD_RESPONSE = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
AD_OUTLOOK = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
IMAP_HOST, SMTP_HOST = "imap.platon.man.lublin.pl", "smtp.platon.man.lublin.pl"


def ad_request(address):
    """An autodiscover request as Outlook sends it."""
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
            'requestschema/2006">\n'
            "  <Request>\n    <EMailAddress>%s</EMailAddress>\n"
            "    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/"
            "responseschema/2006a</AcceptableResponseSchema>\n  </Request>\n</Autodiscover>\n"
            % address).encode()


def servers(services="imaps imap submissions submission"):
    """What every answer must list for client_services, in order: (protocol, host, port, ssl)."""
    every = {"imaps": ("imap", IMAP_HOST, 993, True), "imap": ("imap", IMAP_HOST, 143, False),
             "pop3s": ("pop3", "platon.man.lublin.pl", 995, True),
             "pop3": ("pop3", "platon.man.lublin.pl", 110, False),
             "submissions": ("smtp", SMTP_HOST, 465, True), "submission": ("smtp", SMTP_HOST, 587, False)}
    order = ("imaps", "imap", "pop3s", "pop3", "submissions", "submission")
    return [every[k] for k in order if k in services.split()]


class AutoconfWorld(World):
    """Mail programs' answers: the IMAP and submission hosts are set, POP3's is the primary domain."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.w.sql(f"SELECT vmail.setting_set('imap_host', '{IMAP_HOST}');"
                  f"SELECT vmail.setting_set('submission_host', '{SMTP_HOST}');"
                  "SELECT vmail.account_add('box@acme.lublin.pl', 'free', 'jan', NULL, 1048576);"
                  "SELECT vmail.alias_add('sales@acme.lublin.pl', ARRAY['jan'], true, 'jan');"
                  "SELECT vmail.account_add('olabox@acme.lublin.pl', 'free', 'ola', NULL, 1048576)")

    def autoconfig(self, address, path=TB_PATHS[0], host=None):
        q = "" if address is None else "?emailaddress=" + urllib.parse.quote(address, safe="")
        return Browser(self.w).get(path + q, headers={"Host": host} if host else None)

    def autodiscover(self, body, path=AD_PATHS[0], host=None):
        h = {"Content-Type": "text/xml; charset=utf-8"}
        if host:
            h["Host"] = host
        return Browser(self.w).request("POST", path, raw_body=body, headers=h)

    def assert_headers(self, r, ctype):
        self.assertEqual(r.header("Content-Type"), ctype)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        self.assertEqual(r.header("X-Frame-Options"), "DENY")
        self.assertIn("default-src 'none'", r.header("Content-Security-Policy"))
        self.assertFalse(r.cookies())  # no session, nothing remembered

    def thunderbird(self, r, address, services="imaps imap submissions submission"):
        """Every field of a config-v1.1.xml answer for address."""
        self.assertEqual(r.status, 200, r.body)
        self.assert_headers(r, "application/xml; charset=utf-8")
        root = ET.fromstring(r.body)
        domain = address.split("@")[1].lower()
        self.assertEqual((root.tag, root.get("version")), ("clientConfig", "1.1"))
        (prov,) = root.findall("emailProvider")
        self.assertEqual(prov.get("id"), domain)
        self.assertEqual([e.text for e in prov.findall("domain")], [domain])
        self.assertEqual(prov.findtext("displayName"), "Platon")
        self.assertEqual(prov.findtext("displayShortName"), "Platon")
        got = []
        for e in prov:
            if e.tag in ("incomingServer", "outgoingServer"):
                self.assertEqual(e.tag == "outgoingServer", e.get("type") == "smtp")
                self.assertEqual(e.findtext("authentication"), "password-cleartext")
                self.assertEqual(e.findtext("username"), address.lower())
                got.append((e.get("type"), e.findtext("hostname"), int(e.findtext("port")),
                            {"SSL": True, "STARTTLS": False}[e.findtext("socketType")]))
        self.assertEqual(got, servers(services))
        return root

    def outlook(self, r, address, services="imaps imap submissions submission"):
        """Every field of an autodiscover answer for address."""
        self.assertEqual(r.status, 200, r.body)
        self.assert_headers(r, "application/xml; charset=utf-8")
        root = ET.fromstring(r.body)
        self.assertEqual(root.tag, AD_RESPONSE + "Autodiscover")
        (resp,) = root.findall(AD_OUTLOOK + "Response")
        self.assertEqual(resp.findtext(AD_OUTLOOK + "User/" + AD_OUTLOOK + "DisplayName"), "Platon")
        (acct,) = resp.findall(AD_OUTLOOK + "Account")
        self.assertEqual(acct.findtext(AD_OUTLOOK + "AccountType"), "email")
        self.assertEqual(acct.findtext(AD_OUTLOOK + "Action"), "settings")
        got = []
        for p in acct.findall(AD_OUTLOOK + "Protocol"):
            f = {c.tag[len(AD_OUTLOOK):]: c.text for c in p}
            self.assertEqual(f["LoginName"], address.lower())
            self.assertEqual((f["SSL"], f["SPA"], f["AuthRequired"], f["DomainRequired"]),
                             ("on", "off", "on", "off"))
            got.append((f["Type"].lower(), f["Server"], int(f["Port"]),
                        {"SSL": True, "TLS": False}[f["Encryption"]]))
        self.assertEqual(got, servers(services))
        return root


class TestAutoconfig(AutoconfWorld):
    def test_thunderbird_both_paths(self):
        for path in TB_PATHS:
            with self.subTest(path=path):
                self.thunderbird(self.autoconfig("jan@acme.lublin.pl", path), "jan@acme.lublin.pl")
        # the shell account's own address (login jan: Dovecot takes the address too), lower-cased
        self.thunderbird(self.autoconfig("  JAN@Platon.Man.Lublin.PL "), "jan@platon.man.lublin.pl")
        # HEAD answers the same headers without a body
        r = Browser(self.w).request("HEAD", TB_PATHS[0] + "?emailaddress=jan%40acme.lublin.pl")
        self.assertEqual((r.status, r.body), (200, ""))

    def test_outlook_both_paths(self):
        for path in AD_PATHS:
            with self.subTest(path=path):
                self.outlook(self.autodiscover(ad_request("Box@ACME.lublin.pl"), path), "box@acme.lublin.pl")

    def test_unknown_address_answered_like_a_known_one(self):
        """No probing for mailboxes: a made-up address gets the answer of a real one, bar the address."""
        for known, unknown in (("box@acme.lublin.pl", "nobody-x7@acme.lublin.pl"),
                               ("jan@platon.man.lublin.pl", "nobody-x7@platon.man.lublin.pl"),
                               ("sales@acme.lublin.pl", "nobody-x7@acme.lublin.pl")):
            with self.subTest(known=known):
                a, b = self.autoconfig(known), self.autoconfig(unknown)
                self.thunderbird(b, unknown)
                self.assertEqual((a.status, a.body.replace(known, unknown)), (b.status, b.body))
                a, b = self.autodiscover(ad_request(known)), self.autodiscover(ad_request(unknown))
                self.outlook(b, unknown)
                self.assertEqual((a.status, a.body.replace(known, unknown)), (b.status, b.body))

    def test_domains_not_served(self):
        """A foreign domain and a hosted one not active yet look alike: 404, text/plain."""
        for address in ("jan@example.org", "jan@acme.com.pl"):
            with self.subTest(address=address):
                for r in (self.autoconfig(address), self.autodiscover(ad_request(address))):
                    self.assertEqual(r.status, 404, r.body)
                    self.assert_headers(r, "text/plain; charset=utf-8")
                    self.assertEqual(r.body, "domain %s is not served here\n" % address.split("@")[1])

    def test_bad_addresses(self):
        for query, want in (("", "no e-mail address in the request"),
                            ("?emailaddress=", "no e-mail address in the request"),
                            ("?email=jan%40acme.lublin.pl", "no e-mail address in the request"),
                            ("?emailaddress=a%40acme.lublin.pl&emailaddress=b%40acme.lublin.pl",
                             "no e-mail address in the request"),
                            ("?emailaddress=%zz", "no e-mail address in the request"),
                            ("?emailaddress=" + "a" * 300 + "%40acme.lublin.pl",
                             "no e-mail address in the request"),
                            ("?emailaddress=not-an-address", 'not an e-mail address: "not-an-address"'),
                            ("?emailaddress=jan%40%40acme.lublin.pl",
                             'not an e-mail address: "jan@@acme.lublin.pl"')):
            with self.subTest(query=query):
                r = Browser(self.w).get(TB_PATHS[0] + query)
                self.assertEqual((r.status, r.body), (400, want + "\n"))
                self.assert_headers(r, "text/plain; charset=utf-8")
        r = self.autodiscover(ad_request("not-an-address"))
        self.assertEqual((r.status, r.body), (400, 'not an e-mail address: "not-an-address"\n'))

    def test_hostile_bodies(self):
        ns = 'xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"'
        laughs = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
                  + "".join('<!ENTITY lol%d "%s">\n' % (i, ("&lol%d;" % (i - 1) if i > 1 else "&lol;") * 10)
                            for i in range(1, 10))
                  + ']>\n<Autodiscover %s><Request><EMailAddress>&lol9;@acme.lublin.pl</EMailAddress>'
                  '</Request></Autodiscover>' % ns)
        bodies = {
            "external entity": ('<?xml version="1.0"?>\n'
                                '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                                '<Autodiscover %s><Request><EMailAddress>&x;</EMailAddress></Request>'
                                '</Autodiscover>' % ns, "document type declarations are not accepted"),
            "billion laughs": (laughs, "document type declarations are not accepted"),
            "processing instruction": ('<?xml version="1.0"?>\n<?xml-stylesheet href="http://x/"?>\n'
                                       + ad_request("jan@acme.lublin.pl").decode().split("\n", 1)[1],
                                       "processing instructions are not accepted"),
            "unclosed element": ('<Autodiscover %s><Request><EMailAddress>jan@acme.lublin.pl</Request>'
                                 '</Autodiscover>' % ns, "not a well-formed autodiscover request"),
            "not autodiscover": ("<html><body>jan@acme.lublin.pl</body></html>",
                                 "not a well-formed autodiscover request"),
            "empty": ("", "not a well-formed autodiscover request"),
            "no address": ("<Autodiscover %s><Request></Request></Autodiscover>" % ns,
                           "no e-mail address in the request"),
        }
        for name, (body, reason) in bodies.items():
            with self.subTest(body=name):
                r = self.autodiscover(body.encode())
                self.assertEqual((r.status, r.body), (400, reason + "\n"))
                self.assert_headers(r, "text/plain; charset=utf-8")
        # over 8 KiB: refused before parsing (a well-formed request padded with blanks), and
        # over the 128 KiB the panel reads at all by evhttp itself
        padded = ad_request("jan@acme.lublin.pl").replace(b"</Autodiscover>",
                                                          b" " * 8200 + b"</Autodiscover>")
        r = self.autodiscover(padded)
        self.assertEqual((r.status, r.body), (413, "request too large\n"))
        self.assertEqual(self.autodiscover(b"<" * 20000).status, 413)
        self.assertEqual(self.autodiscover(b"<" * 140000).status, 413)
        # exactly 8 KiB is still read
        exact = ad_request("jan@acme.lublin.pl")
        exact = exact.replace(b"</Autodiscover>", b" " * (8192 - len(exact)) + b"</Autodiscover>")
        self.assertEqual(len(exact), 8192)
        self.outlook(self.autodiscover(exact), "jan@acme.lublin.pl")

    def test_methods(self):
        for path in TB_PATHS:
            r = Browser(self.w).request("POST", path + "?emailaddress=jan%40acme.lublin.pl", raw_body=b"x")
            self.assertEqual((r.status, r.header("Allow")), (405, "GET, HEAD"))
        for path in AD_PATHS:
            r = Browser(self.w).get(path)
            self.assertEqual((r.status, r.header("Allow")), (405, "POST"))

    def test_host_header_ignored(self):
        """The address decides, never the name the request came to."""
        r = self.autoconfig("jan@acme.lublin.pl", host="autoconfig.example.org")
        self.thunderbird(r, "jan@acme.lublin.pl")
        self.assertNotIn("example.org", r.body)
        r = self.autodiscover(ad_request("box@acme.lublin.pl"), host="autodiscover.example.org")
        self.outlook(r, "box@acme.lublin.pl")
        self.assertEqual(self.autoconfig("jan@example.org", host="autoconfig.acme.lublin.pl").status, 404)

    def test_pop3_when_offered(self):
        services = "imaps imap pop3s submissions submission"
        self.w.sql(f"SELECT vmail.setting_set('client_services', '{services}')")
        try:
            self.thunderbird(self.autoconfig("jan@acme.lublin.pl"), "jan@acme.lublin.pl", services)
            self.outlook(self.autodiscover(ad_request("jan@acme.lublin.pl")), "jan@acme.lublin.pl", services)
            page = self.logged_in("jan").get("/mail-programs")
            self.assertIn("Incoming mail (POP3)", page.body)
            self.assertIn("<code>platon.man.lublin.pl</code></td><td class=\"num\">995</td><td>SSL/TLS</td>",
                          page.body)
        finally:
            self.w.sql("SELECT vmail.setting_set('client_services', 'imaps imap submissions submission')")
        self.assertNotIn("POP3", self.logged_in("jan").get("/mail-programs").body)


def page_rows(body, idx):
    """The login and the server rows of mailbox section idx of the Mail programs page."""
    sec = re.search(r'<section class="mailbox" id="mailbox-%d".*?</section>' % idx, body, re.S).group(0)
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td><code>([^<]*)</code></td>'
                      r'<td class="num">(\d+)</td><td>([^<]*)</td><td><code>([^<]*)</code></td></tr>', sec)
    return sec, rows


class TestMailProgramsPage(AutoconfWorld):
    def test_page_lists_every_mailbox_and_its_login(self):
        b = self.logged_in("jan")
        overview = b.overview()
        self.assertIn('<a href="/mail-programs" id="programs-link">', overview.body)
        r = b.get("/mail-programs")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertIn("<h1>Mail programs</h1>", r.body)
        self.assertIn("Aliases are not logins: you cannot log in with an alias address.", r.body)
        self.assertIn('name="csrf"', r.body)  # the header's logout form
        want = [("Incoming mail (IMAP)", IMAP_HOST, "993", "SSL/TLS"),
                ("Incoming mail (IMAP)", IMAP_HOST, "143", "STARTTLS"),
                ("Outgoing mail (SMTP)", SMTP_HOST, "465", "SSL/TLS"),
                ("Outgoing mail (SMTP)", SMTP_HOST, "587", "STARTTLS")]
        # the shell account's mailbox: its login is the Unix login
        sec, rows = page_rows(r.body, 0)
        self.assertIn("jan@platon.man.lublin.pl <span", sec)
        self.assertIn('<code class="login">jan</code>', sec)
        self.assertEqual(rows, [w + ("jan",) for w in want])
        self.assertIn('href="/mail-programs/apple?address=jan@platon.man.lublin.pl"', sec)
        # a mail account: its login is the full address
        sec, rows = page_rows(r.body, 1)
        self.assertIn('<code class="login">box@acme.lublin.pl</code>', sec)
        self.assertEqual(rows, [w + ("box@acme.lublin.pl",) for w in want])
        self.assertIn('href="/mail-programs/apple?address=box@acme.lublin.pl"', sec)
        # aliases and other customers' mailboxes are not listed as mailboxes
        self.assertNotIn('id="mailbox-2"', r.body)
        self.assertNotIn("sales@acme.lublin.pl", r.body)
        self.assertNotIn("olabox@", r.body)
        # Polish
        r = self.logged_in("jan", lang="pl").get("/mail-programs")
        self.assertIn("<h1>Programy pocztowe</h1>", r.body)
        self.assertIn("Aliasy nie są loginami", r.body)
        self.assertEqual(page_rows(r.body, 0)[1][0],
                         ("Poczta przychodząca (IMAP)", IMAP_HOST, "993", "SSL/TLS", "jan"))
        self.assertIn("Login (nazwa użytkownika)", r.body)

    def test_dns_records_of_the_customers_domains(self):
        """Each of the customer's domains with the records vmail.client_dns_records gives it,
        as a zone file has them; no other customer's domain."""
        for lang, heading in ((None, "DNS records for your domains"), ("pl", "Rekordy DNS Twoich domen")):
            r = self.logged_in("jan", lang=lang).get("/mail-programs")
            self.assertEqual(r.status, 200)
            m = re.search(r'<section id="dns-records"[^>]*>(.*?)</section>', r.body, re.S)
            self.assertIsNotNone(m, r.body)
            self.assertIn("<h2>%s</h2>" % heading, m.group(1))
            blocks = dict(re.findall(r"<h3>([^<]+)</h3>\n<pre>(.*?)</pre>", m.group(1), re.S))
            owned = self.w.sql("SELECT string_agg(d.name, ' ' ORDER BY d.name) FROM vmail.domain d"
                               " JOIN vmail.customer c ON c.id = d.customer_id WHERE c.name = 'acme'")
            self.assertEqual(sorted(blocks), owned.split())
            for dom, text in blocks.items():
                want = self.w.sql("SELECT string_agg(name || '. ' || type || ' ' || value, E'\\n'"
                                  " ORDER BY i) FROM vmail.client_dns_records('%s')"
                                  " WITH ORDINALITY r(name, type, value, i)" % dom)
                self.assertEqual(html_text(text).strip(), want, dom)
            self.assertIn("_imaps._tcp.acme.lublin.pl. SRV 0 1 993 %s." % IMAP_HOST, m.group(1))
            self.assertIn("autoconfig.acme.lublin.pl. CNAME ", m.group(1))

    def test_logged_out(self):
        for path in ("/mail-programs", "/mail-programs/apple?address=jan%40platon.man.lublin.pl"):
            r = Browser(self.w).get(path)
            self.assertEqual((r.status, r.header("Location")), (303, "/login"), path)

    def apple(self, b, address):
        r = b.get("/mail-programs/apple?address=" + urllib.parse.quote(address, safe=""))
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("Content-Type"), "application/x-apple-aspen-config")
        self.assertEqual(r.header("Content-Disposition"),
                         'attachment; filename="%s.mobileconfig"' % address.lower())
        self.assertEqual(r.header("Cache-Control"), "no-store")
        return r

    def test_apple_profiles(self):
        b = self.logged_in("jan")
        for address, login in (("jan@platon.man.lublin.pl", "jan"),
                               ("box@acme.lublin.pl", "box@acme.lublin.pl"),
                               ("BOX@acme.lublin.pl", "box@acme.lublin.pl")):
            with self.subTest(address=address):
                r = self.apple(b, address)
                again = self.apple(self.logged_in("jan"), address)
                self.assertEqual(r.body, again.body)  # stable UUIDs: a second download replaces the first
                prof = plistlib.loads(r.body.encode())
                self.assertEqual((prof["PayloadType"], prof["PayloadVersion"]), ("Configuration", 1))
                (mail,) = prof["PayloadContent"]
                self.assertEqual(mail["PayloadType"], "com.apple.mail.managed")
                self.assertRegex(prof["PayloadUUID"], r"^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-")
                self.assertNotEqual(prof["PayloadUUID"], mail["PayloadUUID"])
                self.assertEqual(mail["EmailAddress"], address.lower())
                self.assertEqual(mail["EmailAccountType"], "EmailTypeIMAP")
                self.assertEqual((mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"],
                                  mail["IncomingMailServerUseSSL"], mail["IncomingMailServerUsername"]),
                                 (IMAP_HOST, 993, True, login))
                self.assertEqual((mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"],
                                  mail["OutgoingMailServerUseSSL"], mail["OutgoingMailServerUsername"]),
                                 (SMTP_HOST, 465, True, login))
                for p in (prof, mail):
                    self.assertFalse({"IncomingPassword", "OutgoingPassword", "Password"} & set(p), p.keys())
                self.assertNotIn(PASSWORD, r.body)
        uuids = {plistlib.loads(self.apple(b, a).body.encode())["PayloadUUID"]
                 for a in ("jan@platon.man.lublin.pl", "box@acme.lublin.pl")}
        self.assertEqual(len(uuids), 2)

    def test_apple_profile_of_another_mailbox(self):
        b = self.logged_in("jan")
        for address in ("ola@platon.man.lublin.pl", "olabox@acme.lublin.pl", "sales@acme.lublin.pl",
                        "nobody@acme.lublin.pl", "<script>@acme.lublin.pl"):
            with self.subTest(address=address):
                r = b.get("/mail-programs/apple?address=" + urllib.parse.quote(address, safe=""))
                self.assertEqual(r.status, 404)
                self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
                self.assertNotIn("<script>", r.body)
        for query in ("", "?address=", "?addr=jan%40platon.man.lublin.pl", "?address=%zz"):
            self.assertEqual(b.get("/mail-programs/apple" + query).status, 404, query)


NGINX_CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib", "nginx",
                          "vmail-panel.conf")


class TestBehindNginx(unittest.TestCase):
    """contrib/nginx/vmail-panel.conf itself in front of the panel, over the unix socket, with
    only what a test cannot have changed: plain HTTP on a free loopback port instead of TLS,
    and the socket in the world's directory.  nginx's workers run as www-data, the user the
    panel is told to trust, as on a Debian host."""

    def setUp(self):
        self.w = PanelWorld("panel_nginx", unix_socket=True, panel_socket_group="www-data",
                            trusted_proxy_users="www-data").start()
        os.chmod(self.w.dir, 0o711)  # www-data may reach the socket (mode 0660, group www-data)
        self.port = free_port()
        self.port80 = free_port()  # the automatic configuration's plain-HTTP server
        with open(NGINX_CONF) as f:
            site = f.read()
        site = re.sub(r"server \{[^{}]*return 301[^{}]*\}", "", site)  # the port-80 redirect
        self.assertIn("listen 80;", site)
        site = site.replace("listen 443 ssl http2;", "listen 127.0.0.1:%d;" % self.port)
        site = site.replace("listen 80;", "listen 127.0.0.1:%d;" % self.port80)
        site = re.sub(r"(?m)^\s*(listen \[::\]:(443|80)\b.*|ssl_.*)$", "", site)
        self.assertIn("/run/vmail-panel/http.sock", site)
        site = site.replace("/run/vmail-panel/http.sock", self.w.unix_path)
        d = self.w.dir
        with open(os.path.join(d, "site.conf"), "w") as f:
            f.write(site)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("daemon off;\nuser www-data;\nworker_processes 1;\npid %s/nginx.pid;\n"
                    "error_log %s/nginx-error.log;\nevents {}\nhttp {\naccess_log off;\n" % (d, d)
                    + "".join("%s_temp_path %s/%s;\n" % (t, d, t)
                              for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                    + "include %s/site.conf;\n}\n" % d)
        self.nginx = subprocess.Popen(["nginx", "-c", conf, "-p", d, "-e", d + "/nginx-error.log"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            self.assertIsNone(self.nginx.poll(), "nginx exited")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.port80), timeout=0.2).close()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "nginx did not listen")
                time.sleep(0.05)

    def tearDown(self):
        self.nginx.terminate()
        self.nginx.wait(10)
        self.nginx.stderr.close()
        self.assertEqual(self.w.stop(), 0)

    def test_nginx_names_the_client(self):
        front = type("Front", (), {"port": self.port})
        # a browser's own X-Real-IP is replaced by nginx; the panel believes nginx's
        self.assertEqual(Browser(front, real_ip="203.0.113.77").login("ola", "bad").status, 401)
        b = Browser(front, real_ip="203.0.113.77")
        self.assertEqual(b.login("jan").status, 303)
        self.assertEqual(b.overview().status, 200)
        log = self.w.log_text()
        self.assertIn('failed login for "ola" from 127.0.0.1', log)
        self.assertIn('login "jan" from 127.0.0.1', log)
        self.assertNotIn("203.0.113.77", log)
        self.assertNotIn(" from local", log)  # nginx is not an unknown local peer

    def test_long_out_of_office_text_passes_nginx(self):
        """8 KiB of Polish text is several times that form-encoded: nginx lets the out-of-office
        form through (its own limit) and still stops as much on any other path."""
        b = Browser(type("Front", (), {"port": self.port}))
        self.assertEqual(b.login("jan").status, 303)
        page = b.get(rules_url(OWN))
        self.assertEqual(page.status, 200, page.body)
        body = ("Zażółć gęślą jaźń, żółw źdźbło.\r\n" * 400).encode()[:8150].decode(errors="ignore")
        form = {"csrf": page.csrf(), "address": OWN, "subject": "Urlop", "body": body, "start": "", "end": "",
                "days": "7", "from": OWN}
        r = b.post("/mailbox/vacation", form)
        self.assertEqual((r.status, r.header("Location")), (303, rules_url(OWN)), r.body[:500])
        self.assertEqual(self.w.sql("SELECT octet_length(vacation_body) > 7000 FROM vmail.sieve_rule"), "t")
        encoded = len(urllib.parse.urlencode(form))
        self.assertGreater(encoded, 16 * 1024)  # over the limit of every other path
        r = b.post("/mailbox/forward/add", dict(form, target="x@example.org"))
        self.assertEqual(r.status, 413)
        self.assertIn("nginx", r.body)  # stopped by nginx before the panel

    def test_automatic_configuration(self):
        """The four paths reach the panel under autoconfig.* and autodiscover.* names (Thunderbird's
        plain-HTTP fallback included) and under the web host's; nothing else does."""
        tls = Browser(type("Front", (), {"port": self.port}))
        plain = Browser(type("Front", (), {"port": self.port80}))
        q = "?emailaddress=jan%40acme.lublin.pl"
        for front, host, path in ((plain, "autoconfig.acme.lublin.pl", TB_PATHS[0]),
                                  (plain, "autoconfig.acme.lublin.pl", TB_PATHS[1]),
                                  (tls, "autoconfig.acme.lublin.pl", TB_PATHS[0]),
                                  (tls, "panel.example.net", TB_PATHS[1])):
            with self.subTest(host=host, path=path, port=front.world.port):
                r = front.get(path + q, headers={"Host": host})
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual(r.header("Content-Type"), "application/xml; charset=utf-8")
                self.assertEqual({e.text for e in ET.fromstring(r.body).iter("username")},
                                 {"jan@acme.lublin.pl"})
        for host, path in (("autodiscover.acme.lublin.pl", AD_PATHS[0]),
                           ("autodiscover.acme.lublin.pl", AD_PATHS[1]), ("panel.example.net", AD_PATHS[1])):
            with self.subTest(host=host, path=path):
                r = tls.request("POST", path, raw_body=ad_request("box@acme.lublin.pl"),
                                headers={"Host": host, "Content-Type": "text/xml"})
                self.assertEqual(r.status, 200, r.body)
                self.assertEqual({e.text for e in ET.fromstring(r.body).iter(AD_OUTLOOK + "LoginName")},
                                 {"box@acme.lublin.pl"})
        # only those paths: the panel's pages are not reachable under these names
        for front, host in ((plain, "autoconfig.acme.lublin.pl"), (tls, "autoconfig.acme.lublin.pl"),
                            (tls, "autodiscover.acme.lublin.pl")):
            for path in ("/login", "/", "/mail/config-v1.1.xml.bak" + q):
                self.assertEqual(front.get(path, headers={"Host": host}).status, 404, (host, path))
        self.assertEqual(plain.request("POST", AD_PATHS[0], raw_body=ad_request("jan@acme.lublin.pl"),
                                       headers={"Host": "autoconfig.acme.lublin.pl"}).status, 404)
        # nginx stops a body over 8 KiB itself
        r = tls.request("POST", AD_PATHS[0], raw_body=b" " * 9000,
                        headers={"Host": "autodiscover.acme.lublin.pl"})
        self.assertEqual(r.status, 413)
        self.assertNotIn("autodiscover request refused", self.w.log_text())


class TestDatabaseDown(unittest.TestCase):
    def test_unavailable_not_wrong_password(self):
        w = PanelWorld("panel_nodb", panel_database="host=/nonexistent dbname=vmail user=panel_test",
                       panel_db_timeout="2s").start()
        try:
            b = Browser(w)
            self.assertEqual(b.get("/login").status, 200)  # the login page needs no database
            r = b.login("jan")
            self.assertEqual(r.status, 503)
            self.assertIn("temporarily unavailable", r.body)
            self.assertNotIn("Wrong login", r.body)
            # a mail program is told to come back, in text it can show, never an HTML page
            for r in (b.get(TB_PATHS[0] + "?emailaddress=jan%40acme.lublin.pl"),
                      b.request("POST", AD_PATHS[0], raw_body=ad_request("jan@acme.lublin.pl"))):
                self.assertEqual(r.status, 503)
                self.assertEqual(r.header("Retry-After"), "30")
                self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
                self.assertEqual(r.header("Cache-Control"), "no-store")
                self.assertIn("temporarily unavailable", r.body)
            # client input is still answered 4xx without the database
            self.assertEqual(b.get(TB_PATHS[0]).status, 400)
            self.assertEqual(b.request("POST", AD_PATHS[0], raw_body=b"<!DOCTYPE x>").status, 400)
        finally:
            self.assertEqual(w.stop(), 0)


if __name__ == "__main__":
    unittest.main()
