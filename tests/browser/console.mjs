// Deploy and consoles in the browser, run by tests/e2e/61-browser-console.sh
// inside the sandbox (env: VMMOD_URL, VMMOD_TOKEN, VM, SHOTS).  Prints
// "ok"/"FAIL" lines; exits 1 on any failure.
import { launch, watchedPage, shotDir, ok, bad, check, step, fails } from './lib.mjs';
import { randomBytes } from 'node:crypto';

const V = process.env.VMMOD_URL, TOKEN = process.env.VMMOD_TOKEN, VM = process.env.VM;
const SHOTS = shotDir();
const sel = (name) => `[data-vm="${name.replace(/["\\]/g, '\\$&')}"]`;

const ctx = await launch();
// console windows opened by the page: record their errors and CSP violations
ctx.on('page', (p) => {
	p.problems = [];
	p.on('pageerror', (e) => p.problems.push('pageerror: ' + e.message));
	p.on('console', (m) => {
		if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) p.problems.push('console: ' + m.text());
	});
});
try {
	const page = await watchedPage(ctx);
	await step('login', async () => {
		await page.goto(V + '/login');
		await page.fill('input[name=token]', TOKEN);
		await page.click('button[type=submit]');
		await page.waitForSelector(`[data-gvm=vm-rows] ${sel(VM)} .gvm-state-running`, { timeout: 20000 });
		ok(`dashboard lists ${VM} running`);
	});

	// ---- (a) deploy the demo template from the VM page
	await step('deploy demo', async () => {
		const form = page.locator('form[data-template=demo]');
		await form.waitFor({ timeout: 10000 });
		await form.locator('input[name=name]').fill('demo-web');
		await form.locator('input[name=start]').uncheck();
		const t0 = Date.now();
		await form.locator('button[type=submit]').click();
		const job = page.locator('.gvm-job').first();
		await job.waitFor({ timeout: 10000 });
		ok('a job with a progress bar appears: ' + await job.locator('.gvm-job-head').textContent());
		await page.screenshot({ path: `${SHOTS}/deploy-progress.png`, fullPage: true });
		await page.waitForFunction(() => {
			const j = document.querySelector('.gvm-job');
			return j && j.dataset.state && !['queued', 'running'].includes(j.dataset.state);
		}, null, { timeout: 90000 });
		const state = await job.getAttribute('data-state');
		const now = await job.locator('[role=progressbar]').getAttribute('aria-valuenow');
		const width = await job.locator('[role=progressbar] > div').evaluate((e) => e.style.width);
		check(`deploy job ${state} in ${Date.now() - t0} ms, progress ${now} % (bar ${width}): ` +
			await job.textContent(), state === 'succeeded' && now === '100' && parseFloat(width) === 100);
		await page.waitForSelector(`[data-gvm=vm-rows] ${sel('demo-web')} .gvm-state-shutoff`, { timeout: 10000 });
		ok('the deployed demo-web is in the list, shut off');
		await page.screenshot({ path: `${SHOTS}/deploy-done.png`, fullPage: true });
	});

	// ---- (b) serial console from the page, in its own window
	await step('serial console', async () => {
		const row = page.locator(`[data-gvm=vm-rows] ${sel(VM)}`);
		const [popup] = await Promise.all([
			ctx.waitForEvent('page'),
			row.locator('button[data-action=console]').click(),
		]);
		await popup.waitForURL(/\/console\//, { timeout: 10000 });
		const u = new URL(popup.url());
		check(`console window at ${u.pathname}${u.search}`, u.pathname === `/console/${VM}` && u.searchParams.get('type') === 'serial');
		await popup.waitForFunction(() => document.getElementById('gvm-console-status')?.textContent === 'connected', null, { timeout: 10000 });
		ok('serial websocket connected');
		await popup.waitForSelector('.xterm-rows');
		const word = 'hi-' + randomBytes(4).toString('hex');
		const screen = () => popup.evaluate(() =>
			[...document.querySelectorAll('.xterm-rows > div')].map((r) => r.textContent.replace(/\u00a0/g, ' ').trimEnd()));
		let found = false, rows = [];
		const t0 = Date.now();
		for (let attempt = 0; attempt < 30 && !found; attempt++) {
			await popup.click('.xterm');
			await popup.keyboard.press('Enter');
			await popup.keyboard.type(`echo ${word}`);
			await popup.keyboard.press('Enter');
			for (let i = 0; i < 10 && !found; i++) {
				await popup.waitForTimeout(200);
				rows = await screen();
				found = rows.some((r) => r.trim() === word);
			}
		}
		check(`"${word}" read back from the xterm screen in ${Date.now() - t0} ms`, found);
		if (!found) console.log(rows.filter(Boolean).slice(-10).join('\n'));
		check('the typed command is on the screen too', rows.some((r) => r.includes(`echo ${word}`)));
		await popup.screenshot({ path: `${SHOTS}/console-serial.png` });
		check('no CSP violations or errors in the console window: ' + popup.problems.join('; '), popup.problems.length === 0);
		await popup.close();
	});

	// ---- (c) VNC console: the guest's framebuffer
	await step('vnc console', async () => {
		const [popup] = await Promise.all([
			ctx.waitForEvent('page'),
			page.evaluate((n) => import('/assets/js/api.js').then((m) => m.openConsole(n, 'vnc')), VM),
		]);
		await popup.waitForURL(/\/console\/.*type=vnc/, { timeout: 10000 });
		const canvas = popup.locator('#gvm-console canvas');
		await canvas.waitFor({ timeout: 10000 });
		// colours in the canvas (sampled), until the guest's text is there
		const colours = () => popup.evaluate(() => {
			const c = document.querySelector('#gvm-console canvas');
			if (!c || !c.width || !c.height) return { n: 0, w: 0, h: 0 };
			const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
			const s = new Set();
			for (let i = 0; i < d.length; i += 4 * 7) s.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
			return { n: s.size, w: c.width, h: c.height };
		});
		let col = { n: 0 };
		const t0 = Date.now();
		while (Date.now() - t0 < 20000) {
			col = await colours();
			if (col.n > 1) break;
			await popup.waitForTimeout(250);
		}
		check(`VNC canvas ${col.w}x${col.h} shows the framebuffer: ${col.n} colours (want > 1) after ${Date.now() - t0} ms`, col.n > 1);
		await popup.waitForTimeout(500);
		await canvas.screenshot({ path: `${SHOTS}/console-vnc-canvas.png` });
		await popup.screenshot({ path: `${SHOTS}/console-vnc.png` });
		check('no CSP violations or errors in the VNC window: ' + popup.problems.join('; '), popup.problems.length === 0);
		await popup.close();
	});
	check('no CSP violations or errors in the dashboard: ' + page.problems.join('; '), page.problems.length === 0);
} finally {
	await ctx.close();
}
process.exit(fails ? 1 : 0);
