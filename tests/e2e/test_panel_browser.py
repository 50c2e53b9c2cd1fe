#!/usr/bin/env python3
"""test_panel_browser: a person at the panel in a real browser — Debian's Chromium driven by
playwright-core (tests/e2e/browser/panel.mjs): log in, add aliases until the 6th is refused,
add a free mail account, see the usage bar, read the Mail programs page (in English and in
Polish), switch the own mailbox's out-of-office reply on and forward it to the mail account,
see the account's forwarding back refused as a loop, see that page in Polish, log out.  A screenshot of each
page is kept in tests/artifacts/panel/.

Needs the Debian packages chromium and nodejs (with npm); playwright-core comes from the npm
registry (npm ci on first run) and never downloads a browser of its own.
Run: python3 -m unittest tests/e2e/test_panel_browser.py -v
"""
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from panelworld import MiB, PASSWORD, REPO, PanelWorld  # noqa: E402

BROWSER_DIR = os.path.join(REPO, "tests", "e2e", "browser")
SHOTS = os.path.join(REPO, "tests", "artifacts", "panel")
CHROMIUM = "/usr/bin/chromium"


def npm_ready():
    if os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        return
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, env=env,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        r = subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, env=env,
                           capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("npm could not install playwright-core:\n" + r.stdout + r.stderr)


class TestPanelInChromium(unittest.TestCase):
    def test_person_at_the_panel(self):
        # prerequisites missing are failures, not skips: CI must have them
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "install the Debian package chromium")
        self.assertIsNotNone(shutil.which("node"), "install nodejs")
        self.assertIsNotNone(shutil.which("npm"), "install npm")
        npm_ready()

        w = PanelWorld("panel_browser", login_failure_delay="100ms").start()
        try:
            w.sql(f"SELECT vmail.quota_set('jan', {8 * MiB}, 120)")
            os.makedirs(SHOTS, exist_ok=True)
            for f in os.listdir(SHOTS):
                if f.endswith(".png"):
                    os.unlink(os.path.join(SHOTS, f))
            env = dict(os.environ, PANEL_URL=w.url, PANEL_LOGIN="jan", PANEL_PASSWORD=PASSWORD,
                       PANEL_DOMAIN="acme.lublin.pl", SHOTS=SHOTS, CHROMIUM=CHROMIUM)
            r = subprocess.run(["node", "panel.mjs"], cwd=BROWSER_DIR, env=env, capture_output=True,
                               text=True, timeout=170)
            sys.stdout.write(r.stdout)
            self.assertEqual(r.returncode, 0, "panel.mjs failed:\n%s\n%s\npanel log:\n%s" %
                             (r.stdout, r.stderr, w.log_text()[-4000:]))
            self.assertIn("panel.mjs: all steps passed", r.stdout)
        finally:
            rc = w.stop()
        self.assertEqual(rc, 0, w.log_text()[-3000:])

        shots = sorted(f for f in os.listdir(SHOTS) if f.endswith(".png"))
        for name in ("login", "overview", "alias-added", "sixth-alias-refused", "account-added", "usage",
                     "mail-programs", "rules", "forward-added", "forward-loop-refused", "polish",
                     "mail-programs-polish", "rules-polish", "logged-out"):
            self.assertTrue(any(f.endswith("-%s.png" % name) for f in shots), "screenshot %s in %s" % (name, shots))
        for f in shots:
            with open(os.path.join(SHOTS, f), "rb") as fh:
                self.assertEqual(fh.read(8), b"\x89PNG\r\n\x1a\n", f)
        # what the browser did is in the database, and nothing more
        self.assertEqual(w.sql("SELECT count(*) FROM vmail.alias a JOIN vmail.shell_account s "
                               "ON s.id = a.owner_shell_id WHERE s.login = 'jan' AND a.counts"), "5")
        self.assertEqual(w.sql("SELECT quota FROM vmail.mail_account WHERE address = 'office@acme.lublin.pl'"),
                         str(20 * MiB))
        self.assertEqual(w.sql("SELECT r.vacation_on, r.vacation_subject, r.vacation_start, r.vacation_end,"
                               " r.vacation_days, r.forward_to, r.forward_keep FROM vmail.sieve_rule r"
                               " JOIN vmail.shell_account s ON s.id = r.shell_account_id WHERE s.login = 'jan'"),
                         "t|Away until 14 July|2026-07-01|2026-07-14|3|{office@acme.lublin.pl}|t")
        # the loop was refused: the mail account has no rules
        self.assertEqual(w.sql("SELECT count(*) FROM vmail.sieve_rule WHERE shell_account_id IS NULL"), "0")


if __name__ == "__main__":
    unittest.main()
