// The USB devices panel (web-assets/js/usb.js) against vmmod running under
// umockdev (libusb enumerates tests/data/umockdev's fake sticks): a fake
// Zigbee stick is attached to a stopped VM from the page with one click and
// listed as wanted, the tile warns about the VM's configured-but-missing
// device, detach works, no CSP violation.  Screenshot: usb-panel.png.
import { launch, watchedPage, shotDir, ok, bad, check, step, fails } from './lib.mjs';

const V = process.env.VMMOD_URL, TOKEN = process.env.VMMOD_TOKEN;
const VM = process.env.USB_VM || 'gvm-usb-web';
const WARN_VM = process.env.USB_WARN_VM || 'gvm-usb-warn';
const SHOTS = shotDir();
const api = async (path) => (await fetch(V + path, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();

const ctx = await launch();
const page = await watchedPage(ctx);
const panel = page.locator('[data-gvm=usb-panel]');
let stickId = null;

await step('login', async () => {
	await page.goto(V + '/');
	await page.fill('input[name=token]', TOKEN);
	await page.click('button[type=submit]');
	await page.waitForSelector('[data-gvm=usb-panel]');
	ok('the VM page has a USB devices panel');
});

await step('host devices listed and named', async () => {
	await page.selectOption('[data-gvm=usb-vm]', VM);
	// a recognised stick: "Zigbee coordinator — …"
	const row = panel.locator('tr[data-wanted=no]', { hasText: 'Zigbee coordinator' }).first();
	await row.waitFor({ timeout: 10000 });
	stickId = await row.getAttribute('data-usb');
	const text = await row.textContent();
	check(`a fake stick is named (${text.trim().slice(0, 80)})`, /Zigbee coordinator.* — /.test(text));
	// (USB rows only: the PCI section lists the host's PCI devices too)
	check('hubs are not offered', (await panel.locator('tr[data-usb]', { hasText: /hub/i }).count()) === 0);
	const storage = panel.locator('tr', { hasText: 'SanDisk' }).locator('button[data-action=attach]');
	check('USB storage is listed but not offered for attaching', await storage.isDisabled());
});

await step('attach with one click', async () => {
	const row = panel.locator(`tr[data-usb="${stickId}"]`);
	await row.locator('button[data-action=attach]').click();
	const wanted = panel.locator(`tr[data-usb="${stickId}"][data-wanted=yes]`);
	await wanted.waitFor({ timeout: 10000 });
	const st = await wanted.locator('[data-state]').getAttribute('data-state');
	check('the attached row keeps the known name', /Zigbee coordinator/.test(await wanted.textContent()));
	check(`attached to the stopped VM, state "${st}" (attached when it starts)`, st === 'ready');
	await page.waitForSelector('[data-gvm=usb-msg].gvm-msg-ok');
	const vm = (await api('/api/vms')).vms.find((v) => v.name === VM);
	check('GET /api/vms carries the device in the VM object',
		vm && Array.isArray(vm.devices) && vm.devices.some((d) => d.id === stickId));
});

await step('tile warns about a missing device', async () => {
	const li = page.locator(`[data-gvm=tile-list] li[data-vm="${WARN_VM}"]`);
	await li.locator('[data-gvm=usb-missing]').waitFor({ timeout: 10000 });
	ok('the tile shows a warning icon for the VM whose stick is unplugged');
	check('the VM with its stick present has no warning',
		(await page.locator(`[data-gvm=tile-list] li[data-vm="${VM}"] [data-gvm=usb-missing]`).count()) === 0);
	await page.selectOption('[data-gvm=usb-vm]', WARN_VM);
	const w = panel.locator('tr[data-wanted=yes] [data-state=waiting]');
	await w.waitFor({ timeout: 10000 });
	check('its panel says "waiting for replug"', (await w.textContent()) === 'waiting for replug');
});

await step('screenshot', async () => {
	await page.selectOption('[data-gvm=usb-vm]', VM);
	await panel.locator(`tr[data-usb="${stickId}"][data-wanted=yes]`).waitFor({ timeout: 10000 });
	await page.setViewportSize({ width: 1280, height: 1400 });
	await panel.screenshot({ path: `${SHOTS}/usb-panel.png` });
	await page.screenshot({ path: `${SHOTS}/usb-page.png`, fullPage: true });
	ok('screenshots usb-panel.png, usb-page.png');
});

await step('detach with one click', async () => {
	await panel.locator(`tr[data-usb="${stickId}"][data-wanted=yes] button[data-action=detach]`).click();
	await panel.locator(`tr[data-usb="${stickId}"][data-wanted=no]`).waitFor({ timeout: 10000 });
	ok('detached: the stick is offered again');
});

await step('the Home Assistant deploy dialog offers the Zigbee sticks', async () => {
	const form = page.locator('form[data-template=homeassistant]');
	if (!(await form.count())) { bad('no homeassistant template card'); return; }
	const pick = form.locator('[data-gvm=deploy-devices]');
	const box = pick.locator('label', { hasText: 'Zigbee' }).first().locator('input[type=checkbox]');
	await box.waitFor({ timeout: 10000 });
	const n = await pick.locator('label').count();
	check(`the deploy dialog lists ${n} Zigbee/Z-Wave sticks, nothing else`,
		n >= 2 && (await pick.locator('label', { hasText: /SanDisk|USB Serial/ }).count()) === 0);
	await box.check();
	// the request is caught here: no image is downloaded by this test
	let sent = null;
	await page.route('**/api/vms/create', (route) => {
		sent = route.request().postDataJSON();
		route.fulfill({ status: 409, contentType: 'application/json', body: '{"error":"caught by the test","code":"test"}' });
	});
	await form.locator('input[name=name]').fill('ha-usb');
	await form.locator('button[type=submit]').click();
	await page.waitForSelector('[data-gvm=deploy-msg].gvm-msg-error');
	const u = sent && sent.devices && sent.devices.usb;
	check(`POST /api/vms/create carries the picked stick (${JSON.stringify(u)})`,
		Array.isArray(u) && u.length === 1 && /^[0-9a-f]{4}$/.test(u[0].vendor) && /^[0-9a-f]{4}$/.test(u[0].product));
	await page.unroute('**/api/vms/create');
});

check('no CSP violation, page error or dialog', page.problems.length === 0 && page.dialogs.length === 0);
for (const p of page.problems) console.log('  ' + p);
await ctx.close();
process.exit(fails ? 1 : 0);
