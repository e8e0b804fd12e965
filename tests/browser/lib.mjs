// Shared by the browser checks: Debian's Chromium, headless, through
// playwright-core (which downloads nothing), with a fresh profile each run.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function launch() {
	const profile = mkdtempSync(join(tmpdir(), 'gvm-chromium-'));
	const ctx = await chromium.launchPersistentContext(profile, {
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		viewport: { width: 1280, height: 860 },
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
			'--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
			'--disable-dev-shm-usage'],
	});
	ctx.profile = profile;
	const close = ctx.close.bind(ctx);
	ctx.close = async () => { await close(); rmSync(profile, { recursive: true, force: true }); };
	return ctx;
}

// A page that records CSP violations, console errors and JS dialogs.
export async function watchedPage(ctx, log) {
	const page = await ctx.newPage();
	page.problems = [];
	page.dialogs = [];
	page.on('dialog', async (d) => { page.dialogs.push(d.message()); await d.dismiss(); });
	page.on('pageerror', (e) => page.problems.push('pageerror: ' + e.message));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) page.problems.push('console: ' + m.text());
		if (log) log(`[console.${m.type()}] ${m.text()}`);
	});
	return page;
}

export function shotDir() {
	const d = process.env.SHOTS || 'build/screenshots';
	mkdirSync(d, { recursive: true });
	return d;
}

// The report lines every check prints ("ok   ..." / "FAIL ..."); `fails`
// is a live binding: importers read the count at the end.
export let fails = 0;
export const ok = (m) => console.log('ok   ' + m);
export const bad = (m) => { console.log('FAIL ' + m); fails++; };
export const check = (m, c) => (c ? ok(m) : bad(m));
// runs FN; an exception is one failed check named NAME
export async function step(name, fn) {
	try { await fn(); } catch (e) { bad(`${name}: ${e.message.split('\n')[0]}`); }
}
