// PCI passthrough in the web UI against vmmod reading fake sysfs trees
// (tests/e2e/82-pci-browser.sh).  The devices panel's PCI section
// (web-assets/js/pci.js, mounted by usb.js): meteorlake-dgpu's devices
// listed with address, class, accelerator badge and IOMMU group; the reason
// and a disabled button for devices that cannot go; the iGPU shown in use
// by the VM that holds it; attach from the keyboard and detach; a whole
// IOMMU group; the refusals of the VM's security profile and of libvirt
// shown as errors while `virsh dumpxml` shows no hostdev.  The deploy
// dialog's PCI picks (deploydev.js): the NPU and GPUs a template wants, none
// ticked, the held iGPU disabled; a SECRET request with the NPU refused and
// shown by the picks, nothing made; the NPU and the discrete GPU's group
// reach the create request and the defined VM's <hostdev managed='yes'>.
// console-gpu: the host's console GPU disabled with vmmod's reason.  No PCI
// section and no PCI picks where the host lists none.  Screenshots:
// pci-panel.png, pci-page.png, pci-deploy.png.
import { execFileSync } from 'node:child_process';
import { launch, watchedPage, shotDir, ok, bad, check, step, fails } from './lib.mjs';

const V = process.env.VMMOD_URL, TOKEN = process.env.VMMOD_TOKEN;
const EMPTY = process.env.EMPTY_URL, EMPTY_TOKEN = process.env.EMPTY_TOKEN;
const CONSOLE = process.env.CONSOLE_URL, CONSOLE_TOKEN = process.env.CONSOLE_TOKEN;
const HOLDER = process.env.HOLDER; // the VM (named with markup) that holds the iGPU
// deployed from the dialog (never started), refused by the SECRET profile
const DEPLOYED = process.env.DEPLOYED, REFUSED = process.env.REFUSED;
const VM = 'gvm-pci-web', SECRET = 'gvm-pci-secret', NOBUS = 'gvm-pci-nobus';
const IGPU = '0000:00:02.0', NPU = '0000:00:0b.0', HOSTBRIDGE = '0000:00:00.0', AUDIO = '0000:00:1f.3';
const DGPU = '0000:02:00.0', DGPU_AUDIO = '0000:02:00.1';
const SHOTS = shotDir();
const api = async (path, url = V, token = TOKEN) =>
	(await fetch(url + path, { headers: { Authorization: `Bearer ${token}` } })).json();
// the PCI addresses of the <hostdev type='pci'> in a domain's XML; with
// managed, only those libvirt binds to vfio-pci itself (managed='yes')
function pciAddrs(xml, managed) {
	const out = [];
	for (const m of xml.matchAll(/<hostdev\b([^>]*)>[\s\S]*?<\/hostdev>/g)) {
		if (!/type='pci'/.test(m[1]) || (managed && !/managed='yes'/.test(m[1]))) continue;
		const a = /<address domain='0x([0-9a-f]+)' bus='0x([0-9a-f]+)' slot='0x([0-9a-f]+)' function='0x([0-9a-f]+)'/.exec(m[0]);
		if (a) out.push(`${a[1].padStart(4, '0')}:${a[2].padStart(2, '0')}:${a[3].padStart(2, '0')}.${a[4]}`);
	}
	return out;
}
// the PCI addresses of a VM's <hostdev type='pci'>, definition and live
function hostdevs(name) {
	const out = [];
	for (const args of [['dumpxml', '--inactive', name], ['dumpxml', name]]) {
		const xml = execFileSync('virsh', args, { encoding: 'utf8' });
		out.push(...pciAddrs(xml, false));
		if (/<hostdev/.test(xml) && !out.length) out.push('(a hostdev)');
	}
	return [...new Set(out)].sort();
}
function domainExists(name) {
	try {
		execFileSync('virsh', ['-q', 'dominfo', name], { stdio: 'ignore' });
		return true;
	} catch (e) {
		return false;
	}
}
async function login(p, url, token) {
	await p.goto(url + '/');
	await p.fill('input[name=token]', token);
	await p.click('button[type=submit]');
	await p.waitForSelector('[data-gvm=usb-panel]');
}

const ctx = await launch();
const page = await watchedPage(ctx);
const pci = page.locator('[data-gvm=pci-panel]');
const row = (addr) => pci.locator(`tr[data-pci="${addr}"]`);
const msg = pci.locator('[data-gvm=pci-msg]');
let host = [];

await step('login', async () => {
	await login(page, V, TOKEN);
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

// ---- the deploy dialog's PCI picks (deploydev.js)
const form = (p, id) => p.locator(`form[data-template="${id}"]`);
const pick = (f, addr) => f.locator(`[data-gvm=deploy-pci] label[data-pci="${addr}"]`);
const addrsOf = (f) => f.locator('[data-gvm=deploy-pci] label[data-pci]')
	.evaluateAll((ls) => ls.map((l) => l.getAttribute('data-pci')).sort());
const GPUS_NPU = [IGPU, NPU, DGPU].sort().join();

await step('the deploy dialog offers the NPU and the GPUs the template wants', async () => {
	const f = form(page, 'pci-demo');
	const part = f.locator('[data-gvm=deploy-pci]');
	await part.locator('label[data-pci]').first().waitFor({ timeout: 15000 });
	const addrs = await addrsOf(f);
	check(`pci:npu and pci:gpu list the NPU, the iGPU and the discrete GPU (${addrs})`, addrs.join() === GPUS_NPU);
	check(`the legend names the kinds: "${await part.locator('legend').textContent()}"`,
		(await part.locator('legend').textContent()) === 'PCI devices (NPU, GPU)');
	check('none is ticked', (await part.locator('input:checked').count()) === 0);
	check('the NPU carries its badge', (await pick(f, NPU).locator('[data-gvm=pci-accel]').textContent()) === 'NPU');
	check('the NPU can be picked', await pick(f, NPU).locator('input').isEnabled());
	const ig = pick(f, IGPU);
	await ig.locator('[data-gvm=pci-why]', { hasText: 'in use by' }).waitFor({ timeout: 10000 });
	const why = await ig.locator('[data-gvm=pci-why]').textContent();
	check(`the held iGPU says who has it, as text (${why})`, why === `in use by ${HOLDER}` && (await f.locator('img').count()) === 0);
	const box = ig.locator('input');
	check('its box is disabled and described by the reason', await box.isDisabled() &&
		(await box.getAttribute('aria-describedby')) === (await ig.locator('[data-gvm=pci-why]').getAttribute('id')));
	const g = await pick(f, DGPU).textContent();
	check(`the discrete GPU goes with its IOMMU group (${g.replace(/\s+/g, ' ').trim()})`,
		g.includes(`goes with its IOMMU group: ${DGPU_AUDIO}`) && await pick(f, DGPU).locator('input').isEnabled());
	// the keyboard passes the disabled box by
	const order = [];
	await part.locator('input:not([disabled])').first().focus();
	for (let i = 0; i < 5; i++) {
		const v = await page.evaluate(() => document.activeElement.closest('[data-gvm=deploy-pci]') && document.activeElement.value);
		if (!v) break;
		order.push(v);
		await page.keyboard.press('Tab');
	}
	check(`Tab goes through the NPU and the GPU, not the iGPU (${order})`, order.sort().join() === [NPU, DGPU].sort().join());
	check(`npu-demo (pci:npu) lists the NPU only (${await addrsOf(form(page, 'npu-demo'))})`,
		(await addrsOf(form(page, 'npu-demo'))).join() === NPU);
	// the shipped template wants the same kinds
	check(`the shipped ubuntu-server offers them too (${await addrsOf(form(page, 'ubuntu-server'))})`,
		(await addrsOf(form(page, 'ubuntu-server'))).join() === GPUS_NPU);
});

await step('a SECRET deploy with the NPU is refused, shown by the picks, nothing made', async () => {
	const f = form(page, 'pci-demo');
	let sent = null;
	// the dialog stops SECRET with a PCI pick itself (83-security-browser):
	// the test makes the request SECRET's on its way (with the TPM and
	// Secure Boot SECRET needs), so that vmmod's refusal is what is shown
	await page.route('**/api/vms/create', async (route) => {
		sent = route.request().postDataJSON();
		const body = { ...sent, classification: 'SECRET', tpm: true, secure_boot: true, start: false };
		await route.continue({ postData: JSON.stringify(body) });
	});
	try {
		await f.locator('input[name=name]').fill(REFUSED);
		await f.locator('input[name=start]').uncheck();
		const box = pick(f, NPU).locator('input');
		await box.focus();
		await page.keyboard.press('Space');
		check('Space ticks the NPU', await box.isChecked());
		const resp = page.waitForResponse((r) => r.url().endsWith('/api/vms/create'));
		await f.locator('button[type=submit]').click();
		const r = await resp;
		const answer = await r.json();
		check(`the request carried the NPU (${JSON.stringify(sent && sent.devices)})`,
			sent && JSON.stringify(sent.devices) === JSON.stringify({ pci: [NPU] }));
		check(`vmmod refused it: HTTP ${r.status()} ${answer.code}`, r.status() === 400 && answer.code === 'classification');
		const m = f.locator('[data-gvm=deploy-pci-msg].gvm-msg-error');
		await m.waitFor({ timeout: 10000 });
		const text = await m.textContent();
		check(`the refusal is shown by the picks (${text})`,
			/^Not deployed: classification: SECRET VMs get no PCI passthrough .*security profile/.test(text) &&
			(await m.getAttribute('data-code')) === 'classification' && (await m.getAttribute('role')) === 'alert');
		check('and in the deploy message', /^Cannot deploy .*SECRET VMs get no PCI passthrough/.test(
			await page.locator('[data-gvm=deploy-msg]').textContent()));
		check('no job was started', (await page.locator('[data-gvm=jobs] [data-job]', { hasText: REFUSED }).count()) === 0);
		check('vmmod lists no such VM', !(await api('/api/vms')).vms.some((v) => v.name === REFUSED));
		check('virsh knows no such domain', !domainExists(REFUSED));
		await page.waitForFunction((a) => {
			const b = document.querySelector(`form[data-template="pci-demo"] label[data-pci="${a}"] input`);
			return b && b.checked;
		}, NPU, { timeout: 5000 });
		ok('the NPU stays ticked');
	} finally {
		await page.unroute('**/api/vms/create');
	}
});

await step('the NPU and the GPU with its group are deployed into the definition', async () => {
	const f = form(page, 'pci-demo');
	let sent = null;
	// never a start here: libvirtd sees the real /sys, and a started VM
	// would have libvirt bind host devices of those addresses to vfio-pci
	await page.route('**/api/vms/create', async (route) => {
		sent = route.request().postDataJSON();
		if (sent.start !== false) await route.abort();
		else await route.continue();
	});
	try {
		await f.locator('input[name=name]').fill(DEPLOYED);
		check('"Start when ready" is off', !(await f.locator('input[name=start]').isChecked()));
		const box = pick(f, DGPU).locator('input');
		await box.focus();
		await page.keyboard.press('Space');
		check('Space ticks the GPU', await box.isChecked());
		await f.locator('button[type=submit]').focus();
		await page.keyboard.press('Enter');
		const job = page.locator('[data-gvm=jobs] [data-job]', { hasText: DEPLOYED });
		await page.locator('[data-gvm=jobs] [data-job]:is([data-state=succeeded], [data-state=failed], [data-state=cancelled])',
			{ hasText: DEPLOYED }).waitFor({ timeout: 120000 });
		const state = await job.getAttribute('data-state');
		check(`the deploy ${state} (${(await job.innerText()).replace(/\s+/g, ' ').trim().slice(0, 200)})`, state === 'succeeded');
		const got = sent && sent.devices && Array.isArray(sent.devices.pci) ? [...sent.devices.pci].sort() : [];
		check(`devices.pci of the request: NPU, GPU and the GPU's audio (${got})`,
			got.join() === [NPU, DGPU, DGPU_AUDIO].sort().join() && !sent.devices.usb);
		check('the earlier refusal is cleared', await f.locator('[data-gvm=deploy-pci-msg]').isHidden());
		const xml = execFileSync('virsh', ['dumpxml', '--inactive', DEPLOYED], { encoding: 'utf8' });
		const hd = pciAddrs(xml, true).sort();
		check(`virsh dumpxml: ${DEPLOYED} has <hostdev managed='yes'> for the three (${hd})`,
			hd.join() === [NPU, DGPU, DGPU_AUDIO].sort().join() && pciAddrs(xml, false).length === 3);
		// the dialog follows the VM list: the devices are the new VM's now
		for (const a of [NPU, DGPU]) {
			await pick(f, a).locator('[data-gvm=pci-why]', { hasText: `in use by ${DEPLOYED}` }).waitFor({ timeout: 10000 }).catch(async (e) => {
				// the page's list or vmmod's?
				const vm = (await api('/api/vms')).vms.find((v) => v.name === DEPLOYED);
				console.log(`     vmmod lists ${DEPLOYED}'s devices as ${JSON.stringify(vm && vm.devices)}; the page shows "${(await pick(f, a).innerText()).replace(/\s+/g, ' ')}"`);
				throw e;
			});
			check(`${a} is shown in use by ${DEPLOYED}, its box disabled`, await pick(f, a).locator('input').isDisabled());
		}
		await f.scrollIntoViewIfNeeded();
		await f.locator('xpath=..').screenshot({ path: `${SHOTS}/pci-deploy.png` });
		ok('screenshot pci-deploy.png');
	} finally {
		await page.unroute('**/api/vms/create');
	}
});

await step('the deployed VM deleted with its disk frees the devices', async () => {
	const r = await fetch(`${V}/api/vms/${DEPLOYED}?remove_disk=true`, {
		method: 'DELETE', body: '{}',
		headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
	});
	check(`DELETE /api/vms/${DEPLOYED}?remove_disk=true: ${r.status}`, r.status === 204);
	const f = form(page, 'pci-demo');
	await f.locator(`[data-gvm=deploy-pci] label[data-pci="${NPU}"][data-possible=yes]`).waitFor({ timeout: 10000 });
	ok('the NPU is offered again');
});

await step('a template wanting a USB stick and the NPU shows both parts and sends the NPU alone', async () => {
	const f = form(page, 'mixed-demo');
	await pick(f, NPU).waitFor({ timeout: 15000 });
	const all = f.locator('.gvm-devpick-all');
	check('the USB part and the PCI part are side by side',
		(await all.locator('[data-gvm=deploy-devices]').count()) === 1 && (await all.locator('[data-gvm=deploy-pci]').count()) === 1);
	const usb = f.locator('[data-gvm=deploy-devices]');
	await usb.getByText('No zigbee stick is plugged in').waitFor({ timeout: 10000 });
	ok(`the USB part says no stick is plugged in ("${(await usb.innerText()).trim()}")`);
	check(`the PCI part offers the NPU only (${await addrsOf(f)})`, (await addrsOf(f)).join() === NPU);
	let sent = null;
	// answered here: what the dialog sends is the point, not a deploy
	await page.route('**/api/vms/create', async (route) => {
		sent = route.request().postDataJSON();
		await route.fulfill({ status: 409, contentType: 'application/json',
			body: JSON.stringify({ code: 'test_stop', error: 'stopped by the test' }) });
	});
	try {
		await f.locator('input[name=name]').fill('gvm-pci-mixed');
		await f.locator('input[name=start]').uncheck();
		await pick(f, NPU).locator('input').check();
		await f.locator('button[type=submit]').click();
		await page.locator('[data-gvm=deploy-msg]', { hasText: 'stopped by the test' }).waitFor({ timeout: 10000 });
		check(`the request carried the NPU and no USB device (${JSON.stringify(sent && sent.devices)})`,
			sent && JSON.stringify(sent.devices) === JSON.stringify({ pci: [NPU] }));
		check('the refusal is shown', /stopped by the test/.test(await page.locator('[data-gvm=deploy-msg]').textContent()));
	} finally {
		await page.unroute('**/api/vms/create');
	}
	check('vmmod lists no such VM', !(await api('/api/vms')).vms.some((v) => v.name === 'gvm-pci-mixed'));
});

check('no CSP violation, page error or dialog', page.problems.length === 0 && page.dialogs.length === 0);
for (const p of page.problems) console.log('  ' + p);
await page.close();

// a host that lists no PCI device (arm64 builds): no PCI section at all
const p2 = await watchedPage(ctx);
await step('no PCI section where the host lists none', async () => {
	await login(p2, EMPTY, EMPTY_TOKEN);
	const devs = p2.waitForResponse((r) => r.url().endsWith(`/api/vms/${VM}/devices`));
	await p2.selectOption('[data-gvm=usb-vm]', VM);
	await devs;
	await p2.waitForTimeout(300);
	check('the PCI section is hidden', await p2.locator('[data-gvm=pci-panel]').isHidden());
	check('the card stays "USB devices"',
		/^USB devices/.test(await p2.locator('[data-gvm=usb-panel] > h2').textContent()));
	const f = form(p2, 'ubuntu-server');
	await f.waitFor({ timeout: 10000 });
	await p2.waitForTimeout(300);
	check('the deploy dialog has its (hidden) PCI part, and no PCI pick',
		(await f.locator('[data-gvm=deploy-pci]').count()) === 1 && await f.locator('[data-gvm=deploy-pci]').isHidden() &&
		(await f.locator('label[data-pci]').count()) === 0);
	check('the dialog says nothing about PCI', !/PCI/.test(await f.innerText()));
	const errs = await p2.locator('.gvm-msg-error:visible').allTextContents();
	check(`no error there (${errs.join(' | ')})`, errs.length === 0);
	check('no CSP violation, page error or dialog', p2.problems.length === 0 && p2.dialogs.length === 0);
});

// a host whose only GPU shows its console: offered, disabled, vmmod's reason
const p3 = await watchedPage(ctx);
await step('the host\'s console GPU is listed with the reason it cannot go', async () => {
	await login(p3, CONSOLE, CONSOLE_TOKEN);
	const gpu = (await api('/api/host/devices', CONSOLE, CONSOLE_TOKEN)).pci.find((d) => d.address === IGPU);
	const f = form(p3, 'ubuntu-server');
	const l = pick(f, IGPU);
	await l.waitFor({ timeout: 15000 });
	check(`only the GPU is listed (${await addrsOf(f)})`, (await addrsOf(f)).join() === IGPU);
	const why = await l.locator('[data-gvm=pci-why]').textContent();
	check(`its reason is vmmod's (${why})`, gpu && why === gpu.passthrough.reason && /console/.test(why));
	check('its box is disabled', await l.locator('input').isDisabled());
	const none = form(p3, 'npu-demo').locator('[data-gvm=deploy-pci]');
	check(`npu-demo says there is no NPU: "${await none.innerText()}"`,
		await none.isVisible() && /This host has no NPU to pass through\./.test(await none.innerText()) &&
		(await none.locator('input').count()) === 0);
	check('no CSP violation, page error or dialog', p3.problems.length === 0 && p3.dialogs.length === 0);
});
await ctx.close();
process.exit(fails ? 1 : 0);
