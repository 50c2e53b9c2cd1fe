// panel.mjs: a person using vmail-panel in Debian's Chromium, driven by playwright-core.
// Steps: login, aliases, a mail account, usage, Mail programs, out-of-office and forwarding,
// both languages, logout.
// Run by tests/e2e/test_panel_browser.py, which starts the panel and its database first.
//   PANEL_URL   the panel, e.g. http://127.0.0.1:8080
//   PANEL_LOGIN, PANEL_PASSWORD   a shell account with 0 aliases and a mail domain
//   PANEL_DOMAIN   its mail domain;   SHOTS   where the screenshots go
// Prints one line per step; exits non-zero at the first thing that is not as it should be.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const url = process.env.PANEL_URL;
const login = process.env.PANEL_LOGIN;
const password = process.env.PANEL_PASSWORD;
const domain = process.env.PANEL_DOMAIN;
const shots = process.env.SHOTS;
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmail-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  locale: 'en-US',
  viewport: { width: 1100, height: 900 },
});
const problems = [];
let n = 0;

async function shot(page, name) {
  n += 1;
  const file = path.join(shots, `${String(n).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`screenshot ${file}`);
}

try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(15000);
  // a refusal is answered 422, which Chromium logs as a failed load: only other errors count
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      problems.push('console: ' + m.text());
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));

  // log in
  await page.goto(url + '/');
  check(page.url() === url + '/login', 'redirected to the login page, got ' + page.url());
  await shot(page, 'login');
  await page.getByLabel('Login').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(url + '/');
  check(await page.getByRole('heading', { name: 'Mail configuration' }).isVisible(), 'overview heading');
  check((await page.locator('#alias-count').textContent()) === '0 of 5', 'no aliases yet');
  await shot(page, 'overview');
  console.log('step login: ok');

  // five aliases, then the sixth is refused with the rule's words
  const aliasForm = page.locator('form[action="/alias/add"]');
  for (let i = 1; i <= 6; i++) {
    await page.getByLabel('Alias address').fill(`web${i}@${domain}`);
    await aliasForm.getByLabel('Deliver to mailbox').selectOption({ index: 0 });
    await aliasForm.getByRole('button', { name: 'Add' }).click();
    await page.waitForLoadState();
    if (i < 6) {
      check(await page.getByRole('status').filter({ hasText: 'The alias was added.' }).isVisible(),
        `alias ${i} added`);
      if (i === 1) await shot(page, 'alias-added');
    }
  }
  const refusal = page.locator('#alias-add-error');
  check(await refusal.isVisible(), 'the 6th alias is refused next to the form');
  const words = (await refusal.textContent()).trim();
  check(words === `R1: shell account ${login} already has 5 of 5 self-service aliases`, 'R1 words: ' + words);
  check((await page.locator('#alias-count').textContent()) === '5 of 5', '5 of 5 aliases');
  check((await page.getByLabel('Alias address').inputValue()) === `web6@${domain}`, 'typed address kept');
  await refusal.scrollIntoViewIfNeeded();
  await shot(page, 'sixth-alias-refused');
  console.log('step aliases: ok');

  // a free mail account
  const accountForm = page.locator('form[action="/account/add"]');
  await page.getByLabel('Mail account address').fill(`office@${domain}`);
  await accountForm.getByLabel('New password', { exact: true }).fill('office-pass-1');
  await accountForm.getByLabel('Repeat the new password').fill('office-pass-1');
  await accountForm.getByLabel('Quota (e.g. 100M or 1G)').fill('20M');
  await accountForm.getByRole('button', { name: 'Add' }).click();
  await page.waitForLoadState();
  check(await page.getByRole('status').filter({ hasText: 'The mail account was added.' }).isVisible(),
    'mail account added');
  check((await page.locator('#account-count').textContent()) === '1 of 5', '1 of 5 accounts');
  check(await page.locator('#accounts').getByRole('cell', { name: `office@${domain}`, exact: true }).isVisible(),
    'account listed');
  await shot(page, 'account-added');
  console.log('step account: ok');

  // the usage bar: files and the own mailbox as segments, every part in the table
  const bar = page.locator('svg.bar');
  check(await bar.isVisible(), 'usage bar visible');
  const segs = await bar.locator('rect').evaluateAll((rs) => rs.map((r) => r.getAttribute('class')));
  check(segs.includes('seg-files') && segs.includes('seg-mailbox'), 'bar segments: ' + segs);
  const box = await bar.boundingBox();
  check(box && box.width > 300 && box.height > 10, 'bar has a size');
  const legend = await page.locator('table.legend').innerText();
  for (const part of ['Files', 'Your mailbox', `office@${domain}`, 'Free'])
    check(legend.includes(part), 'legend has ' + part);
  check((await page.locator('#disk-summary').textContent()).startsWith('Used '), 'usage summary');
  await page.locator('#h-disk').scrollIntoViewIfNeeded();
  await bar.screenshot({ path: path.join(shots, 'usage-bar.png') });
  await shot(page, 'usage');
  console.log('step usage: ok');

  // Mail programs: each mailbox with the exact login to type, the shell account's is the Unix login
  await page.getByRole('link', { name: 'Settings for mail programs' }).click();
  await page.waitForURL(url + '/mail-programs');
  check(await page.getByRole('heading', { name: 'Mail programs', level: 1 }).isVisible(), 'programs heading');
  check((await page.locator('#mailbox-0 code.login').textContent()) === login, 'own login is the Unix login');
  check((await page.locator('#mailbox-1 code.login').textContent()) === `office@${domain}`,
    'a mail account logs in with its address');
  const imaps = page.locator('#mailbox-0 table.servers tbody tr').first();
  check((await imaps.locator('td').allTextContents()).slice(1, 3).join(' ') === '993 SSL/TLS',
    'IMAP over TLS first');
  check(await page.locator('#aliases-not-logins').isVisible(), 'aliases are not logins');
  check((await page.locator('a.profile').count()) === 2, 'an Apple profile per mailbox');
  await shot(page, 'mail-programs');
  await page.getByRole('link', { name: 'Back to the overview' }).click();
  await page.waitForURL(url + '/');
  console.log('step mail programs: ok');

  // out-of-office reply of the own mailbox, from its link on the overview
  const rulesPath = (u) => u.pathname === '/mailbox/rules';
  await page.locator('#rules-link-0').click();
  await page.waitForURL(rulesPath);
  check(await page.getByRole('heading', { name: 'Out-of-office and forwarding', level: 1 }).isVisible(),
    'rules heading');
  check((await page.locator('#vacation-state').textContent()) === 'The out-of-office reply is off.', 'reply off');
  const vacation = page.locator('form[action="/mailbox/vacation"]');
  const own = await vacation.locator('input[name="address"]').inputValue();
  check(own.startsWith(`${login}@`), 'the page is of the own mailbox: ' + own);
  await vacation.getByLabel('Subject').fill('Away until 14 July');
  await vacation.getByLabel('Text').fill('I am on holiday.\nBack on 15 July.');
  await vacation.getByLabel('First day').fill('2026-07-01');
  await vacation.getByLabel('Last day').fill('2026-07-14');
  await vacation.getByLabel('Reply to the same sender').fill('3');
  check((await vacation.getByLabel('Reply from the address').inputValue()) === own, 'the reply comes from the own address');
  await vacation.getByRole('button', { name: 'Save and switch on' }).click();
  await page.waitForURL(rulesPath);
  check(await page.getByRole('status').filter({ hasText: 'The out-of-office reply was saved and is on.' })
    .isVisible(), 'reply saved');
  check((await page.locator('#vacation-state').textContent()) ===
    'The out-of-office reply is on from 2026-07-01 to 2026-07-14 (the last day).', 'reply on, with its days');
  check(await page.getByRole('button', { name: 'Switch off' }).isVisible(), 'a button to switch it off');
  await shot(page, 'rules');
  console.log('step out-of-office: ok');

  // forwarding to the free mail account, keeping a copy (ticked by default, the warning beside it)
  const forward = page.locator('form[action="/mailbox/forward/add"]');
  await forward.getByLabel('Forward to').fill(`office@${domain}`);
  check(await forward.getByLabel('Keep a copy in the mailbox').isChecked(), 'keep a copy ticked by default');
  check(await page.locator('#forward-keep-warning').isVisible(), 'the warning beside the keep box');
  await forward.getByRole('button', { name: 'Add' }).click();
  await page.waitForURL(rulesPath);
  check(await page.getByRole('status').filter({ hasText: 'The forwarding address was added.' }).isVisible(),
    'forward added');
  check(await page.locator('#forwards').getByRole('cell', { name: `office@${domain}`, exact: true }).isVisible(),
    'target listed');
  check(await page.getByRole('button', { name: `Remove office@${domain}` }).isVisible(), 'a remove button');
  await shot(page, 'forward-added');

  // the mail account forwarding back would loop: refused in the database's words, next to the form
  await page.getByRole('link', { name: 'Back to the overview' }).click();
  await page.waitForURL(url + '/');
  await page.locator('#rules-link-1').click();
  await page.waitForURL(rulesPath);
  const back = page.locator('form[action="/mailbox/forward/add"]');
  await back.getByLabel('Forward to').fill(own);
  await back.getByRole('button', { name: 'Add' }).click();
  await page.waitForLoadState();
  const loop = page.locator('#forward-add-error');
  check(await loop.isVisible(), 'the loop is refused next to the form');
  const loopWords = (await loop.textContent()).trim();
  check(loopWords === `R11: forwarding office@${domain} to ${own} would loop: mail to ${own} comes back to ` +
    `office@${domain}`, 'R11 words: ' + loopWords);
  check((await back.getByLabel('Forward to').inputValue()) === own, 'typed target kept');
  await loop.scrollIntoViewIfNeeded();
  await shot(page, 'forward-loop-refused');
  await page.getByRole('link', { name: 'Back to the overview' }).click();
  await page.waitForURL(url + '/');
  console.log('step forwarding: ok');

  // Polish, by the language switch
  await page.getByRole('link', { name: 'Polski' }).click();
  await page.waitForLoadState();
  check((await page.locator('html').getAttribute('lang')) === 'pl', 'page in Polish');
  check(await page.getByRole('heading', { name: 'Konfiguracja poczty' }).isVisible(), 'Polish heading');
  check((await page.locator('#alias-count').textContent()) === '5 z 5', '5 z 5');
  await shot(page, 'polish');
  await page.getByRole('link', { name: 'Ustawienia programów pocztowych' }).click();
  await page.waitForURL(url + '/mail-programs');
  check(await page.getByRole('heading', { name: 'Programy pocztowe', level: 1 }).isVisible(),
    'Polish programs page');
  check(await page.locator('#mailbox-0').getByRole('rowheader', { name: 'Poczta przychodząca (IMAP)' })
    .first().isVisible(), 'Polish server table');
  await shot(page, 'mail-programs-polish');
  await page.getByRole('link', { name: 'Powrót do przeglądu' }).click();
  await page.waitForURL(url + '/');
  await page.getByRole('link', { name: 'Autoodpowiedź i przekazywanie poczty' }).first().click();
  await page.waitForURL(rulesPath);
  check(await page.getByRole('heading', { name: 'Autoodpowiedź i przekazywanie poczty', level: 1 }).isVisible(),
    'Polish rules page');
  check((await page.locator('#vacation-state').textContent()) ===
    'Autoodpowiedź jest włączona od 2026-07-01 do 2026-07-14 (ostatni dzień).', 'Polish reply state');
  check(await page.getByLabel('Zachowuj kopię w skrzynce').isVisible(), 'Polish keep box');
  check(await page.getByRole('button', { name: 'Zapisz i włącz' }).isVisible(), 'Polish save button');
  await shot(page, 'rules-polish');
  await page.getByRole('link', { name: 'English' }).click();
  await page.waitForLoadState();
  console.log('step language: ok');

  // log out
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(url + '/login?out=1');
  check(await page.getByText('You have been logged out.').isVisible(), 'logged out notice');
  await shot(page, 'logged-out');
  await page.goto(url + '/');
  check(page.url() === url + '/login', 'the session is gone');
  console.log('step logout: ok');

  const cookies = await context.cookies(url);
  check(!cookies.some((c) => c.name === 'vmail_session'), 'no session cookie left');
  check(problems.length === 0, 'no console errors or CSP violations: ' + problems.join('; '));
  console.log('panel.mjs: all steps passed');
} catch (e) {
  console.error(String(e && e.stack || e));
  if (problems.length) console.error('browser problems: ' + problems.join('; '));
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
