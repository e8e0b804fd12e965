// Browser checks of the Guardian VMs web UI, run by tests/e2e/60-browser.sh
// inside the sandbox (env: VMMOD_URL, VMMOD_TOKEN, FIXTURE_URL, FIXTURE_PIN,
// HOSTILE, SHOTS).  Prints "ok"/"FAIL" lines; exits 1 on any failure.
import { launch, watchedPage, shotDir, ok, bad, check, step, fails } from './lib.mjs';

const V = process.env.VMMOD_URL, TOKEN = process.env.VMMOD_TOKEN;
const F = process.env.FIXTURE_URL, PIN = process.env.FIXTURE_PIN;
const HOSTILE = process.env.HOSTILE;
const SHOTS = shotDir();
const vmmod = (method, path) => fetch(V + path, {
	method, headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
	body: method === 'GET' ? undefined : '{}',
});
const sel = (name) => `[data-vm="${name.replace(/["\\]/g, '\\$&')}"]`;

const ctx = await launch();
try {
	await step('fixture 401', async () => {
		const r = await fetch(F + '/api/vms');
		check(`unauthenticated fixture /api/vms -> ${r.status} (want 401)`, r.status === 401);
		const j = await r.json().catch(() => null);
		check('fixture 401 answers JSON', j !== null);
		const e = await fetch(F + '/api/events');
		check(`unauthenticated fixture /api/events -> ${e.status}`, e.status === 401);
	});

	// ---- Guardian fixture: the tile inside the dashboard
	const page = await watchedPage(ctx);
	await step('fixture tile', async () => {
		await page.goto(F + '/');
		check('fixture redirects to its PIN login', page.url().endsWith('/login'));
		await page.fill('input[name=pin]', PIN);
		await page.click('button[type=submit]');
		await page.waitForSelector('.nav-tile.gvm-tile [data-gvm=running]');
		await page.waitForFunction(() => /^\d+$/.test(document.querySelector('[data-gvm=running]').textContent));
		const total = await page.textContent('[data-gvm=total]');
		check(`tile shows the total (${total}, want 4)`, total === '4');
		check('tile uses Guardian nav-tile markup', await page.evaluate(() =>
			['.nav-tile-header', '.nav-tile-icon', '.nav-tile-info h4', '.nav-tile-info p',
				'.nav-tile-footer', '.nav-tile-stat', '.nav-tile-arrow']
				.every((s) => document.querySelector('.gvm-tile ' + s))));
		const before = Number(await page.textContent('[data-gvm=running]'));
		const t0 = Date.now();
		const r = await vmmod('POST', '/api/vms/gvm-web-a/start');
		check(`start gvm-web-a through vmmod -> ${r.status}`, r.status === 200);
		await page.waitForFunction((n) => Number(document.querySelector('[data-gvm=running]').textContent) === n,
			before + 1, { timeout: 10000 });
		ok(`tile count ${before} -> ${before + 1} in ${Date.now() - t0} ms (limit 10 s)`);
		check('tile is live over SSE', (await page.textContent('.gvm-live')) === 'live');
		await page.screenshot({ path: `${SHOTS}/fixture-tile.png`, fullPage: true });
		check('no CSP violations or errors in the fixture page: ' + page.problems.join('; '), page.problems.length === 0);
	});

	await step('tile quick stop/start', async () => {
		const row = page.locator(`.gvm-tile-list ${sel('gvm-web-b')}`);
		await row.locator('button[data-action=start]').click();
		await page.waitForFunction(() => document.querySelector('[data-gvm=running]').textContent === '2', null, { timeout: 10000 });
		ok('quick Start in the tile starts gvm-web-b');
	});

	await step('several dashboards', async () => {
		const more = [];
		for (let i = 0; i < 5; i++) {
			const p = await ctx.newPage();
			await p.goto(F + '/');
			more.push(p);
		}
		await Promise.all(more.map((p) => p.waitForSelector('[data-gvm=running]')));
		await new Promise((r) => setTimeout(r, 1500));
		const modes = await Promise.all(more.map((p) => p.textContent('.gvm-live')));
		ok('modes of 5 more dashboards: ' + modes.join(', '));
		check('past the stream cap dashboards poll', modes.some((m) => /polling/.test(m)));
		// the fixture still answers quickly with 6 dashboards open
		const cookies = await ctx.cookies(F);
		const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
		const t0 = Date.now();
		const r = await fetch(F + '/api/vms', { headers: { Cookie: cookie } });
		const ms = Date.now() - t0;
		check(`fixture /api/vms with 6 dashboards open: ${r.status} in ${ms} ms (< 2000)`, r.status === 200 && ms < 2000);
		// a polling dashboard still follows a change
		await vmmod('POST', '/api/vms/gvm-web-b/force-stop');
		const pollers = more.filter((_, i) => /polling/.test(modes[i]));
		if (pollers.length) {
			await pollers[0].waitForFunction(() => document.querySelector('[data-gvm=running]').textContent === '1', null, { timeout: 10000 });
			ok('a polling dashboard sees the stop');
		}
		await more[more.length - 1].screenshot({ path: `${SHOTS}/fixture-tile-polling.png` });
		for (const p of more) await p.close();
	});

	await step('fixture VM page', async () => {
		await page.goto(F + '/vms');
		await page.waitForSelector(`[data-gvm=vm-rows] ${sel('gvm-web-a')}`);
		await page.screenshot({ path: `${SHOTS}/fixture-vm-page.png`, fullPage: true });
		ok('VM page through the blueprint lists the VMs');
		// GUARDIAN_VMS_HOST_CSS: Guardian's own sheet wins over the built-in tokens
		const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
		check(`the VM page takes Guardian's colours (body ${bg}, Guardian's --bg-body #f3f5f8)`, bg === 'rgb(243, 245, 248)');
		// the USB panel works through the blueprint too (GET /api/host/devices
		// and /api/vms/{name}/devices are forwarded; no USB on this host)
		await page.waitForSelector('[data-gvm=usb-panel]');
		const devs = page.waitForResponse((r) => r.url().endsWith('/api/vms/gvm-web-a/devices'));
		await page.selectOption('[data-gvm=usb-vm]', 'gvm-web-a');
		const st = (await devs).status();
		const err = await page.locator('[data-gvm=usb-msg].gvm-msg-error').count();
		check(`VM page through the blueprint has the USB devices panel (devices ${st}, no error)`,
			st === 200 && err === 0);
	});
	await page.close();

	// ---- vmmod standalone: token login, list, actions, hostile names
	const sa = await watchedPage(ctx);
	await step('standalone login', async () => {
		await sa.goto(V + '/');
		check('standalone / redirects to /login', new URL(sa.url()).pathname === '/login');
		await sa.fill('input[name=token]', 'wrong-token-0000000000');
		await sa.click('button[type=submit]');
		await sa.waitForSelector('#gvm-login-msg:not(.gvm-hidden)');
		ok('a wrong token is refused on the page');
		await sa.screenshot({ path: `${SHOTS}/login.png` });
		await sa.fill('input[name=token]', TOKEN);
		await sa.click('button[type=submit]');
		await sa.waitForSelector(`[data-gvm=vm-rows] ${sel('gvm-web-c')}`);
		ok('dashboard after token login lists the VMs');
	});

	await step('standalone start/stop', async () => {
		const row = sa.locator(`[data-gvm=vm-rows] ${sel('gvm-web-c')}`);
		await row.locator('button[data-action=start]').click();
		await row.locator('.gvm-state-running').waitFor({ timeout: 15000 });
		ok('Start in the VM list: gvm-web-c running');
		const prev = await sa.textContent('[data-gvm=vm-msg]');
		await row.locator('button[data-action=stop]').click();
		await sa.waitForFunction((p) => document.querySelector('[data-gvm=vm-msg]').textContent !== p, prev);
		const m = await sa.textContent('[data-gvm=vm-msg]');
		check(`Stop is requested (ACPI; no guest OS here): "${m}"`, !/error|fail/i.test(m) && /gvm-web-c/.test(m));
		await row.locator('button[data-action=force-stop]').click();
		await row.locator('.gvm-state-shutoff').waitFor({ timeout: 15000 });
		ok('Force stop: gvm-web-c shut off');
	});

	await step('hostile name', async () => {
		const row = sa.locator(`[data-gvm=vm-rows] ${sel(HOSTILE)}`);
		await row.waitFor();
		const txt = await row.locator('.gvm-name').textContent();
		check('a VM named with markup shows its name as text', txt === HOSTILE);
		check('its title is text too', /<script>alert\('t'\)<\/script>/.test(await row.locator('.gvm-title').textContent()));
		check('no <img src=x> and no <script> from data in the page', await sa.evaluate(() =>
			!document.querySelector('img[src="x"]') && ![...document.scripts].some((s) => /alert/.test(s.textContent))));
		await row.locator('button[data-action=start]').click();
		await row.locator('.gvm-state-running').waitFor({ timeout: 15000 });
		ok('the markup-named VM starts from the page (its name round-trips in the URL)');
		await sa.waitForTimeout(500);
		check('no dialog fired: ' + sa.dialogs.join(', '), sa.dialogs.length === 0);
		await sa.screenshot({ path: `${SHOTS}/dashboard.png`, fullPage: true });
	});

	await step('delete with confirmation', async () => {
		const row = sa.locator(`[data-gvm=vm-rows] ${sel('gvm-web-c')}`);
		await row.locator('button[data-action=delete]').click();
		const dlg = sa.locator('[data-gvm=delete-dialog]');
		await dlg.waitFor({ state: 'visible' });
		check('delete dialog offers the remove-disk choice', await dlg.locator('[data-gvm=remove-disk]').isVisible());
		await sa.screenshot({ path: `${SHOTS}/delete-dialog.png` });
		await dlg.locator('[data-gvm=confirm-delete]').click();
		await row.waitFor({ state: 'detached', timeout: 10000 });
		ok('deleted gvm-web-c from the page');
	});

	await step('deploy panel', async () => {
		await sa.waitForSelector('[data-gvm=templates] .gvm-template, [data-gvm=templates] .gvm-msg');
		const t = await sa.textContent('[data-gvm=templates]');
		ok('deploy panel: ' + t.slice(0, 120).replace(/\s+/g, ' '));
	});
	check('no CSP violations or errors on the standalone page: ' + sa.problems.join('; '), sa.problems.length === 0);
} finally {
	await ctx.close();
}
console.log(`browser: ${fails === 0 ? 'all passed' : fails + ' failed'}`);
process.exit(fails === 0 ? 0 : 1);
