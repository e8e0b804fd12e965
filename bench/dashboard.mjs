// bench/dashboard.mjs — run by bench/dashboard.sh (env: VMMOD_URL,
// VMMOD_TOKEN, NVMS, ROUNDS, VM).  Debian's Chromium through playwright-core
// (tests/browser/lib.mjs).  Prints one line:
//   nav=<ms,...> cold=<ms,...> start=<ms,...> stop=<ms,...>
//   nav:   navigation start -> the first animation frame with all NVMS rows
//          of the VM list in the DOM and laid out (performance.now() in an
//          init script's requestAnimationFrame loop, reported by console.log:
//          nothing of playwright's runs in the page until the figure is in —
//          a waitForFunction would inject playwright's helper script, ~10 ms
//          of the page's main thread, often before the rows)
//   cold:  the same with the browser's cache disabled (a first visit)
//   start: POST /api/vms/VM/start sent -> the tile's running count changed
//   stop:  POST force-stop sent -> the count changed back
import { launch } from '../tests/browser/lib.mjs';

const V = process.env.VMMOD_URL, TOKEN = process.env.VMMOD_TOKEN;
const NVMS = Number(process.env.NVMS), ROUNDS = Number(process.env.ROUNDS || 10);
const VM = process.env.VM;
const api = (path) => fetch(V + path, {
	method: 'POST', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' }, body: '{}',
});

const ctx = await launch();
try {
	const page = await ctx.newPage();
	await page.goto(V + '/login');
	await page.fill('input[name=token]', TOKEN);
	await page.click('button[type=submit]');
	await page.waitForSelector('[data-gvm=vm-rows] tr[data-vm]');

	// an init script (before the page's own) checks every animation frame
	// from navigation start: the first frame with all rows laid out
	await page.addInitScript((want) => {
		const tick = () => {
			const rows = document.querySelectorAll('[data-gvm=vm-rows] tr[data-vm]');
			if (rows.length >= want && rows[rows.length - 1].getBoundingClientRect().height > 0) {
				window.gvmRowsAt = performance.now();
				console.log(`gvm-rows-at ${window.gvmRowsAt}`);
				return;
			}
			requestAnimationFrame(tick);
		};
		requestAnimationFrame(tick);
	}, NVMS);
	// the figure of the next page, set up before its navigation starts
	const rowsOnScreen = () => new Promise((resolve, reject) => {
		const on = (m) => {
			const x = /^gvm-rows-at ([0-9.]+)$/.exec(m.text());
			if (!x) return;
			clearTimeout(t);
			page.off('console', on);
			resolve(Number(x[1]));
		};
		const t = setTimeout(() => {
			page.off('console', on);
			reject(new Error(`not all ${NVMS} rows on screen within 10 s`));
		}, 10000);
		page.on('console', on);
	});
	const load = async () => {
		const rows = rowsOnScreen();
		await page.goto(V + '/');
		return rows;
	};
	const nav = [];
	await load(); // warm the cache
	for (let i = 0; i < ROUNDS; i++) nav.push(await load());
	// a first visit: the browser's cache off (every file and answer fetched)
	const cdp = await ctx.newCDPSession(page);
	await cdp.send('Network.enable');
	await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
	const cold = [];
	for (let i = 0; i < Math.min(ROUNDS, 5); i++) cold.push(await load());
	await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
	await cdp.detach();

	// the tile: a MutationObserver timestamps each change of the running count
	const watchCount = () => page.evaluate(() => {
		const el = document.querySelector('[data-gvm=running]');
		window.gvmBench = { from: el.textContent, at: 0 };
		new MutationObserver(() => {
			if (!window.gvmBench.at && el.textContent !== window.gvmBench.from)
				window.gvmBench.at = performance.timeOrigin + performance.now();
		}).observe(el, { childList: true, characterData: true, subtree: true });
	});
	const changed = async (t0) => {
		const h = await page.waitForFunction(() => window.gvmBench.at || false, null, { polling: 10, timeout: 15000 });
		return (await h.jsonValue()) - t0;
	};
	await page.waitForFunction(() => document.querySelector('.gvm-live')?.textContent === 'live', null, { timeout: 10000 });
	const start = [], stop = [];
	for (let i = 0; i < Math.min(ROUNDS, 5); i++) {
		await watchCount();
		let t0 = performance.timeOrigin + performance.now();
		let r = await api(`/api/vms/${VM}/start`);
		if (r.status !== 200) throw new Error(`start -> ${r.status}`);
		start.push(await changed(t0));
		await watchCount();
		t0 = performance.timeOrigin + performance.now();
		r = await api(`/api/vms/${VM}/force-stop`);
		if (r.status !== 200) throw new Error(`force-stop -> ${r.status}`);
		stop.push(await changed(t0));
	}
	const f = (a) => a.map((x) => x.toFixed(1)).join(',');
	console.log(`nav=${f(nav)} cold=${f(cold)} start=${f(start)} stop=${f(stop)}`);
} finally {
	await ctx.close();
}
