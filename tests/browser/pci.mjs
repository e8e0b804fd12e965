// The PCI section of the devices panel (web-assets/js/pci.js, mounted by
// usb.js) against vmmod reading the fake sysfs tree meteorlake-dgpu
// (tests/e2e/82-pci-browser.sh): devices listed with address, class,
// accelerator badge and IOMMU group; the reason and a disabled button for
// devices that cannot go; the iGPU shown in use by the VM that holds it;
// attach from the keyboard and detach; a whole IOMMU group; the refusals of
// the VM's security profile and of libvirt shown as errors while
// `virsh dumpxml` shows no hostdev; no PCI section where the host lists
// none.  Screenshots: pci-panel.png, pci-page.png.
import { execFileSync } from 'node:child_process';
import { launch, watchedPage, shotDir } from './lib.mjs';

const V = process.env.VMMOD_URL, TOKEN = process.env.VMMOD_TOKEN;
const EMPTY = process.env.EMPTY_URL, EMPTY_TOKEN = process.env.EMPTY_TOKEN;
const HOLDER = process.env.HOLDER; // the VM (named with markup) that holds the iGPU
const VM = 'gvm-pci-web', SECRET = 'gvm-pci-secret', NOBUS = 'gvm-pci-nobus';
const IGPU = '0000:00:02.0', NPU = '0000:00:0b.0', HOSTBRIDGE = '0000:00:00.0', AUDIO = '0000:00:1f.3';
const DGPU = '0000:02:00.0', DGPU_AUDIO = '0000:02:00.1';
const SHOTS = shotDir();
let fails = 0;
const ok = (m) => console.log('ok   ' + m);
const bad = (m) => { console.log('FAIL ' + m); fails++; };
const check = (m, c) => (c ? ok(m) : bad(m));
async function step(name, fn) {
	try { await fn(); } catch (e) { bad(`${name}: ${e.message.split('\n')[0]}`); }
}
const api = async (path) => (await fetch(V + path, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
// the PCI addresses of a VM's <hostdev type='pci'>, definition and live
function hostdevs(name) {
	const out = [];
	for (const args of [['dumpxml', '--inactive', name], ['dumpxml', name]]) {
		const xml = execFileSync('virsh', args, { encoding: 'utf8' });
		for (const m of xml.matchAll(/<hostdev[^>]*type='pci'[\s\S]*?<\/hostdev>/g)) {
			const a = /<address domain='0x([0-9a-f]+)' bus='0x([0-9a-f]+)' slot='0x([0-9a-f]+)' function='0x([0-9a-f]+)'/.exec(m[0]);
			if (a) out.push(`${a[1].padStart(4, '0')}:${a[2].padStart(2, '0')}:${a[3].padStart(2, '0')}.${a[4]}`);
		}
		if (/<hostdev/.test(xml) && !out.length) out.push('(a hostdev)');
	}
	return [...new Set(out)].sort();
}

const ctx = await launch();
const page = await watchedPage(ctx);
const pci = page.locator('[data-gvm=pci-panel]');
const row = (addr) => pci.locator(`tr[data-pci="${addr}"]`);
const msg = pci.locator('[data-gvm=pci-msg]');
let host = [];

await step('login', async () => {
	await page.goto(V + '/');
	await page.fill('input[name=token]', TOKEN);
	await page.click('button[type=submit]');
	await page.waitForSelector('[data-gvm=usb-panel]');
	await page.selectOption('[data-gvm=usb-vm]', VM);
	await pci.waitFor({ state: 'visible', timeout: 10000 });
	ok('the devices panel has a PCI section');
	check('the card is titled "Devices" once PCI is there',
		/^Devices/.test(await page.locator('[data-gvm=usb-panel] > h2').textContent()));
	host = (await api('/api/host/devices')).pci;
});

await step('the fake devices are listed', async () => {
	await row(NPU).waitFor({ timeout: 10000 });
	const n = await pci.locator('tr[data-pci]').count();
	check(`every fake device has a row (${n} of ${host.length})`, n === host.length && n > 0);
	const npu = row(NPU);
	const t = await npu.textContent();
	check(`the NPU row has its address, class and group (${t.replace(/\s+/g, ' ').slice(0, 120)})`,
		t.includes(NPU) && t.includes(host.find((d) => d.address === NPU).class || 'class 1200') && /group 2/.test(t));
	check('the NPU carries the NPU badge', (await npu.locator('[data-gvm=pci-accel]').textContent()) === 'NPU');
	check('the iGPU carries the iGPU badge', (await row(IGPU).locator('[data-gvm=pci-accel]').textContent()) === 'iGPU');
	check('a device without accelerator rule has no badge', (await row(DGPU).locator('[data-gvm=pci-accel]').count()) === 0);
	check('the NPU can be attached', await npu.locator('button[data-action=attach]').isEnabled());
	check('accelerators are in the main table, not under "Other"',
		(await pci.locator(`[data-gvm=pci-rows] tr[data-pci="${NPU}"]`).count()) === 1);
});

await step('the iGPU is in use by the VM that holds it', async () => {
	const r = row(IGPU);
	await r.locator('[data-gvm=pci-why]', { hasText: 'in use by' }).waitFor({ timeout: 10000 });
	const why = await r.locator('[data-gvm=pci-why]').textContent();
	check(`its status names the VM as text (${why})`, why === `in use by ${HOLDER}`);
	check('its attach button is disabled', await r.locator('button[data-action=attach]').isDisabled());
	check('the VM name made no element', (await pci.locator('img').count()) === 0);
});

await step('a device that cannot go shows why (keyboard opens "Other")', async () => {
	const other = pci.locator('[data-gvm=pci-other]');
	check('"Other PCI devices" starts closed', (await other.getAttribute('open')) === null);
	await other.locator('summary').focus();
	await page.keyboard.press('Enter');
	check('Enter on its summary opens it', (await other.getAttribute('open')) !== null);
	const br = row(HOSTBRIDGE);
	await br.waitFor({ state: 'visible', timeout: 5000 });
	const why = await br.locator('[data-gvm=pci-why]').textContent();
	check(`the host bridge says why not (${why})`, why === host.find((d) => d.address === HOSTBRIDGE).passthrough.reason &&
		/is a bridge/.test(why));
	check('its attach button is disabled', await br.locator('button').isDisabled());
	const au = await row(AUDIO).locator('[data-gvm=pci-why]').textContent();
	check(`the audio function's group cannot go whole, and the page says what stops it (${au})`,
		/IOMMU group 4/.test(au) && /0000:00:1f\.0 is a bridge/.test(au) && await row(AUDIO).locator('button').isDisabled());
});

await step('attach the NPU from the keyboard', async () => {
	const b = row(NPU).locator('button[data-action=attach]');
	await b.focus();
	await page.keyboard.press('Enter');
	const w = pci.locator(`tr[data-pci="${NPU}"][data-wanted=yes]`);
	await w.waitFor({ timeout: 10000 });
	await pci.locator('[data-gvm=pci-msg].gvm-msg-ok').waitFor({ timeout: 5000 });
	check(`attached to the stopped VM: "${await w.locator('[data-state]').textContent()}"`,
		(await w.locator('[data-state]').getAttribute('data-state')) === 'ready');
	check('the keyboard focus is on its Detach button',
		await page.evaluate((a) => document.activeElement && document.activeElement.dataset.action === 'detach' &&
			document.activeElement.closest('tr').dataset.pci === a, NPU));
	const hd = hostdevs(VM);
	check(`virsh dumpxml: ${VM} has the NPU (${hd})`, hd.join() === NPU);
});

await step('attach the discrete GPU with its IOMMU group', async () => {
	const b = row(DGPU).locator('button[data-action=attach-group]');
	check(`the GPU offers "${await b.textContent()}"`, (await b.textContent()) === 'Attach group (2)' && await b.isEnabled());
	await b.click();
	await pci.locator(`tr[data-pci="${DGPU_AUDIO}"][data-wanted=yes]`).waitFor({ timeout: 10000 });
	check('both functions are the VM\'s', (await pci.locator(`tr[data-pci="${DGPU}"][data-wanted=yes]`).count()) === 1);
	const hd = hostdevs(VM);
	check(`virsh dumpxml: ${VM} has NPU, GPU and its audio (${hd})`, hd.join() === [NPU, DGPU, DGPU_AUDIO].sort().join());
});

await step('screenshot', async () => {
	await page.setViewportSize({ width: 1280, height: 1600 });
	await pci.screenshot({ path: `${SHOTS}/pci-panel.png` });
	await page.screenshot({ path: `${SHOTS}/pci-page.png`, fullPage: true });
	ok('screenshots pci-panel.png, pci-page.png');
});

await step('detach the group, then the NPU', async () => {
	const b = pci.locator(`tr[data-pci="${DGPU_AUDIO}"][data-wanted=yes] button[data-action=detach]`);
	check(`the group leaves together: "${await b.textContent()}"`, (await b.textContent()) === 'Detach group (2)');
	await b.click();
	await pci.locator(`tr[data-pci="${DGPU}"][data-wanted=no]`).waitFor({ timeout: 10000 });
	await pci.locator(`tr[data-pci="${DGPU_AUDIO}"][data-wanted=no]`).waitFor({ timeout: 10000 });
	check(`virsh dumpxml: only the NPU is left (${hostdevs(VM)})`, hostdevs(VM).join() === NPU);
	await pci.locator(`tr[data-pci="${NPU}"][data-wanted=yes] button[data-action=detach]`).click();
	await pci.locator(`tr[data-pci="${NPU}"][data-wanted=no]`).waitFor({ timeout: 10000 });
	check(`virsh dumpxml: no PCI hostdev left (${hostdevs(VM)})`, hostdevs(VM).length === 0);
});

// attach NPU to VM NAME, which refuses; the error and the definition after
async function refused(name, code, text) {
	await page.selectOption('[data-gvm=usb-vm]', name);
	const b = pci.locator(`tr[data-pci="${NPU}"][data-wanted=no] button[data-action=attach]`);
	await b.waitFor({ timeout: 10000 });
	// the rows are rebuilt for the picked VM: wait for its button to be live
	await page.waitForFunction((a) => {
		const r = document.querySelector(`[data-gvm=pci-panel] tr[data-pci="${a}"] button`);
		return r && !r.disabled;
	}, NPU, { timeout: 10000 });
	await b.click();
	await pci.locator('[data-gvm=pci-msg].gvm-msg-error', { hasText: ` to ${name}: ` }).waitFor({ timeout: 10000 });
	const m = await msg.textContent();
	check(`${name}: the error is shown (${m})`, text.test(m) && (await msg.getAttribute('data-code')) === code &&
		(await msg.getAttribute('role')) === 'alert');
	// after the reload the NPU is still offered, not the VM's
	await pci.locator(`tr[data-pci="${NPU}"][data-wanted=no] button:not([disabled])`).waitFor({ timeout: 10000 });
	check(`${name}: the page does not show it attached`, (await pci.locator('tr[data-wanted=yes]').count()) === 0);
	const hd = hostdevs(name);
	check(`${name}: virsh dumpxml has no hostdev (${hd})`, hd.length === 0);
}

await step('the VM\'s security profile refuses', () =>
	refused(SECRET, 'classification', /SECRET VMs get no PCI passthrough .*security profile/));
await step('libvirt refuses (a VM without a PCI bus)', () =>
	refused(NOBUS, 'attach_failed', /could not be attached to the VM's definition.*libvirt refused it/));

check('no CSP violation, page error or dialog', page.problems.length === 0 && page.dialogs.length === 0);
for (const p of page.problems) console.log('  ' + p);
await page.close();

// a host that lists no PCI device (arm64 builds): no PCI section at all
const p2 = await watchedPage(ctx);
await step('no PCI section where the host lists none', async () => {
	await p2.goto(EMPTY + '/');
	await p2.fill('input[name=token]', EMPTY_TOKEN);
	await p2.click('button[type=submit]');
	await p2.waitForSelector('[data-gvm=usb-panel]');
	const devs = p2.waitForResponse((r) => r.url().endsWith(`/api/vms/${VM}/devices`));
	await p2.selectOption('[data-gvm=usb-vm]', VM);
	await devs;
	await p2.waitForTimeout(300);
	check('the PCI section is hidden', await p2.locator('[data-gvm=pci-panel]').isHidden());
	check('the card stays "USB devices"',
		/^USB devices/.test(await p2.locator('[data-gvm=usb-panel] > h2').textContent()));
	const errs = await p2.locator('.gvm-msg-error:visible').allTextContents();
	check(`no error there (${errs.join(' | ')})`, errs.length === 0);
	check('no CSP violation, page error or dialog', p2.problems.length === 0 && p2.dialogs.length === 0);
});
await ctx.close();
process.exit(fails ? 1 : 0);
