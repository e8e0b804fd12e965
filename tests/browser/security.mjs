// The deploy dialog's "Security" part (web-assets/js/deploydev.js's
// securityChoices, in vms.js's template cards) and a VM's security line on
// the VM page, against vmmod (tests/e2e/83-security-browser.sh: a fake
// sysfs tree with an NPU, the template sec-demo wanting it).  Collapsed by
// default, opened from the keyboard; the boxes follow GET /api/host's
// "security" (a faked host without Secure Boot: disabled with the reason,
// SECRET stopped); CUI recommends a TPM; SECRET / TOP SECRET tick and lock
// what they require and say why; no profile, no fields in the request;
// SECRET + an NPU pick stopped before sending; vmmod's 400 shown in the
// dialog; TOP SECRET deployed (not started) with the secure-boot loader,
// the TPM and the LUKS disk in `virsh dumpxml`; the VM page's profile line.
// Screenshot: security-deploy.png.
import { execFileSync } from 'node:child_process';
import { launch, watchedPage, shotDir, ok, bad, check, step, fails } from './lib.mjs';

const V = process.env.VMMOD_URL, TOKEN = process.env.VMMOD_TOKEN;
const DEPLOYED = process.env.DEPLOYED, REFUSED = process.env.REFUSED;
const PLAIN = process.env.PLAIN, SECRET_VM = process.env.SECRET_VM;
const NPU = '0000:00:0b.0';
const SB_CODE = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
const SHOTS = shotDir();
const api = async (path) => (await fetch(V + path, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
function domainExists(name) {
	try {
		execFileSync('virsh', ['-q', 'dominfo', name], { stdio: 'ignore' });
		return true;
	} catch (e) {
		return false;
	}
}
async function login(p) {
	await p.goto(V + '/');
	// a second page of the context has the session cookie already
	await p.waitForSelector('input[name=token], [data-gvm=vm-rows]');
	if (await p.locator('input[name=token]').count()) {
		await p.fill('input[name=token]', TOKEN);
		await p.click('button[type=submit]');
	}
	await p.locator('form[data-template="sec-demo"] [data-gvm=deploy-security]').waitFor({ timeout: 20000 });
}
const FEATURES = ['tpm', 'secure_boot', 'disk_encryption'];
const form = (p) => p.locator('form[data-template="sec-demo"]');
const box = (p, k) => form(p).locator(`[data-gvm=deploy-${k}]`);
const rule = (p) => form(p).locator('[data-gvm=deploy-sec-rule]');
const secMsg = (p) => form(p).locator('[data-gvm=deploy-sec-msg]');
const npuBox = (p) => form(p).locator(`[data-gvm=deploy-pci] label[data-pci="${NPU}"] input`);
async function state(p) { // {tpm: 'checked,locked', ...}
	const o = {};
	for (const k of FEATURES) {
		const b = box(p, k);
		o[k] = `${(await b.isChecked()) ? 'on' : 'off'}${(await b.isDisabled()) ? ',locked' : ''}`;
	}
	return o;
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
// selects CLASS from the keyboard: focus the select, then the keys
async function choose(p, cls) {
	const sel = form(p).locator('[data-gvm=deploy-class]');
	await sel.focus();
	await sel.selectOption(cls);
}

const host = (await api('/api/host')).security || {};
const can = Object.fromEntries(FEATURES.map((k) => [k, Boolean(host[k] && host[k].available)]));
console.log(`     this host can give: ${JSON.stringify(can)}`);

const ctx = await launch();
const page = await watchedPage(ctx);
// every create request the page sends
const sent = [];
page.on('request', (r) => { if (r.url().endsWith('/api/vms/create')) sent.push(r.postDataJSON()); });

await step('"Security" is collapsed and opens from the keyboard', async () => {
	await login(page);
	const det = form(page).locator('[data-gvm=deploy-security]');
	check('it is a <details>, closed', (await det.evaluate((e) => e.tagName)) === 'DETAILS' && (await det.getAttribute('open')) === null);
	check('closed, its boxes are not shown', await box(page, 'tpm').isHidden());
	check(`its summary says none is chosen: "${await det.locator('summary').innerText()}"`,
		/^Security\s+— none$/.test(await det.locator('summary').innerText()));
	await det.locator('summary').focus();
	await page.keyboard.press('Enter');
	check('Enter on the summary opens it', (await det.getAttribute('open')) !== null && await box(page, 'tpm').isVisible());
	check('the classification is "None" by default', (await form(page).locator('[data-gvm=deploy-class]').inputValue()) === '');
	check('nothing is ticked', same(await state(page), Object.fromEntries(FEATURES.map((k) => [k, can[k] ? 'off' : 'off,locked']))));
	// Tab from the select reaches the boxes
	await form(page).locator('[data-gvm=deploy-class]').focus();
	await page.keyboard.press('Tab');
	const first = FEATURES.find((k) => can[k]);
	check(`Tab goes from the classification to the ${first} box`,
		await page.evaluate((k) => document.activeElement && document.activeElement.name === k, first));
	for (const k of FEATURES) {
		if (can[k]) continue;
		const why = await form(page).locator(`label[data-feature=${k}] [data-gvm=sec-why]`).textContent();
		check(`${k}: this host cannot give it and the dialog says why (${why})`, why === host[k].why);
	}
});

await step('a request without a profile carries none of its fields', async () => {
	await page.route('**/api/vms/create', (route) => route.fulfill({
		status: 400, contentType: 'application/json', body: JSON.stringify({ error: 'test: not sent on', code: 'test' }),
	}));
	try {
		sent.length = 0;
		await form(page).locator('input[name=name]').fill(REFUSED);
		await form(page).locator('input[name=start]').uncheck();
		const r = page.waitForResponse((x) => x.url().endsWith('/api/vms/create'));
		await form(page).locator('button[type=submit]').click();
		await r;
		const b = sent[0] || {};
		check(`no classification, tpm, secure_boot, disk_encryption (${JSON.stringify(b)})`,
			sent.length === 1 && !['classification', ...FEATURES].some((k) => k in b) && b.template === 'sec-demo');
		check('a refusal that is not about the profile is not shown there', await secMsg(page).isHidden());
	} finally {
		await page.unroute('**/api/vms/create');
	}
});

await step('CUI recommends a TPM, ticked but not locked', async () => {
	await choose(page, 'CUI');
	const t = await rule(page).textContent();
	check(`the line says so: "${t}"`, t === 'CUI recommends a TPM');
	if (can.tpm) {
		check('the TPM is ticked and can be unticked', (await state(page)).tpm === 'on');
		await box(page, 'tpm').focus();
		await page.keyboard.press('Space');
		check('Space unticks it', !(await box(page, 'tpm').isChecked()));
	}
});

await step('SECRET ticks and locks the TPM and Secure Boot', async () => {
	await choose(page, 'SECRET');
	const t = await rule(page).textContent();
	check(`the line says why: "${t}"`, t === 'SECRET requires a TPM and Secure Boot and allows no PCI passthrough');
	const s = await state(page);
	if (can.tpm && can.secure_boot) {
		check(`TPM and Secure Boot ticked and locked, encryption free (${JSON.stringify(s)})`,
			same(s, { tpm: 'on,locked', secure_boot: 'on,locked', disk_encryption: 'off' }));
		check('the locked boxes are described by the line',
			(await box(page, 'tpm').getAttribute('aria-describedby')).split(' ').includes(await rule(page).getAttribute('id')));
	}
});

await step('TOP SECRET also locks the encrypted disk; back to None unlocks', async () => {
	await choose(page, 'TOP SECRET');
	const t = await rule(page).textContent();
	check(`the line says why: "${t}"`, t === 'TOP SECRET requires a TPM, Secure Boot and disk encryption and allows no PCI passthrough');
	if (can.tpm && can.secure_boot && can.disk_encryption) {
		const s = await state(page);
		check(`all three ticked and locked (${JSON.stringify(s)})`,
			same(s, { tpm: 'on,locked', secure_boot: 'on,locked', disk_encryption: 'on,locked' }));
	}
	check(`the summary tells it closed: "${await form(page).locator('summary').innerText()}"`,
		/TOP SECRET/.test(await form(page).locator('summary').innerText()));
	await choose(page, '');
	check(`None: nothing ticked, nothing locked (${JSON.stringify(await state(page))})`,
		same(await state(page), Object.fromEntries(FEATURES.map((k) => [k, can[k] ? 'off' : 'off,locked']))));
	check('and no line', (await rule(page).textContent()) === '');
});

await step('SECRET with the NPU picked is stopped in the dialog, nothing sent or made', async () => {
	await npuBox(page).waitFor({ timeout: 15000 });
	await npuBox(page).focus();
	await page.keyboard.press('Space');
	check('Space ticks the NPU', await npuBox(page).isChecked());
	await choose(page, 'SECRET');
	const t = await rule(page).textContent();
	check(`the line says the pick is forbidden before sending: "${t}"`,
		t === `SECRET allows no PCI passthrough: untick ${NPU} or choose a lower classification` &&
		(await rule(page).getAttribute('data-problem')) === 'yes');
	sent.length = 0;
	await form(page).locator('input[name=name]').fill(REFUSED);
	await form(page).locator('button[type=submit]').focus();
	await page.keyboard.press('Enter');
	await form(page).locator('[data-gvm=deploy-sec-msg][data-code=dialog]').waitFor({ timeout: 5000 });
	const m = await secMsg(page).textContent();
	check(`the dialog refuses it (${m})`, m === `Not deployed: SECRET allows no PCI passthrough: untick ${NPU} or choose a lower classification` &&
		(await secMsg(page).getAttribute('role')) === 'alert');
	check('and the deploy message says so', /^Cannot deploy gvm-sec-refused: SECRET allows no PCI passthrough/.test(
		await page.locator('[data-gvm=deploy-msg]').textContent()));
	await page.waitForTimeout(300);
	check(`no request was sent (${sent.length})`, sent.length === 0);
	check('no job, no VM in vmmod, no domain', (await page.locator('[data-gvm=jobs] [data-job]', { hasText: REFUSED }).count()) === 0 &&
		!(await api('/api/vms')).vms.some((v) => v.name === REFUSED) && !domainExists(REFUSED));
	// unticking the NPU clears the problem
	await npuBox(page).focus();
	await page.keyboard.press('Space');
	check(`unticked, the line is the rule again: "${await rule(page).textContent()}"`,
		(await rule(page).getAttribute('data-problem')) === 'no' && /^SECRET requires/.test(await rule(page).textContent()));
});

await step('vmmod\'s own refusal is shown in the dialog, nothing made', async () => {
	if (!(can.tpm && can.secure_boot)) { console.log('     skip: SECRET cannot be asked of this host'); return; }
	// the request altered on its way: without Secure Boot, vmmod says 400
	await page.route('**/api/vms/create', async (route) => {
		const b = route.request().postDataJSON();
		delete b.secure_boot;
		await route.continue({ postData: JSON.stringify(b) });
	});
	try {
		sent.length = 0;
		const r = page.waitForResponse((x) => x.url().endsWith('/api/vms/create'));
		await form(page).locator('button[type=submit]').click();
		const resp = await r;
		const ans = await resp.json();
		check(`the page asked SECRET with its requirements (${JSON.stringify(sent[0])})`,
			sent[0] && sent[0].classification === 'SECRET' && sent[0].tpm === true && sent[0].secure_boot === true && !('disk_encryption' in sent[0]) &&
			!sent[0].devices);
		check(`vmmod: ${resp.status()} ${ans.code}`, resp.status() === 400 && ans.code === 'classification');
		await form(page).locator('[data-gvm=deploy-sec-msg][data-code=classification]').waitFor({ timeout: 5000 });
		const m = await secMsg(page).textContent();
		check(`shown in the dialog (${m})`, m === `Not deployed: ${ans.error}` && /SECRET VMs need Secure Boot/.test(m));
		check('nothing made', !(await api('/api/vms')).vms.some((v) => v.name === REFUSED) && !domainExists(REFUSED));
	} finally {
		await page.unroute('**/api/vms/create');
	}
});

await step('TOP SECRET deployed (not started): the definition has the profile', async () => {
	if (!(can.tpm && can.secure_boot && can.disk_encryption)) {
		console.log(`     skip: this host lacks swtpm or OVMF's secure-boot build (${JSON.stringify(host)}): no TOP SECRET deploy`);
		return;
	}
	// never a start: the empty disk boots nothing
	await page.route('**/api/vms/create', (route) => (route.request().postDataJSON().start !== false ? route.abort() : route.continue()));
	try {
		await choose(page, 'TOP SECRET');
		check('"Start when ready" is off', !(await form(page).locator('input[name=start]').isChecked()));
		await form(page).locator('input[name=name]').fill(DEPLOYED);
		sent.length = 0;
		await form(page).locator('button[type=submit]').focus();
		await page.keyboard.press('Enter');
		const job = page.locator('[data-gvm=jobs] [data-job]', { hasText: DEPLOYED });
		await page.locator('[data-gvm=jobs] [data-job]:is([data-state=succeeded], [data-state=failed], [data-state=cancelled])',
			{ hasText: DEPLOYED }).waitFor({ timeout: 120000 });
		const st = await job.getAttribute('data-state');
		check(`the deploy ${st} (${(await job.innerText()).replace(/\s+/g, ' ').trim().slice(0, 200)})`, st === 'succeeded');
		const b = sent[0] || {};
		check(`the request carried the profile (${JSON.stringify(b)})`, b.classification === 'TOP SECRET' &&
			b.tpm === true && b.secure_boot === true && b.disk_encryption === true && b.start === false && !b.devices);
		check('the earlier refusal is cleared', await secMsg(page).isHidden());
		const xml = execFileSync('virsh', ['dumpxml', '--inactive', DEPLOYED], { encoding: 'utf8' });
		const loader = /<loader\b[^>]*>([^<]*)<\/loader>/.exec(xml);
		check(`virsh dumpxml: the secure-boot loader (${loader && loader[0]})`,
			loader && loader[1] === SB_CODE && /secure='yes'/.test(loader[0]));
		check('virsh dumpxml: SMM on', /<smm state='on'\/>/.test(xml));
		check('virsh dumpxml: a TPM (swtpm)', /<tpm model='tpm-crb'>[\s\S]*?<backend type='emulator'/.test(xml));
		// libvirt may add attributes (engine) of its own
		const enc = /<encryption\b[^>]*\bformat='luks'[^>]*>\s*<secret\b[^>]*\btype='passphrase'[^>]*\buuid='([0-9a-f-]+)'/.exec(xml);
		const disk = /<disk type='file' device='disk'>[\s\S]*?<\/disk>/.exec(xml);
		check(`virsh dumpxml: the disk is LUKS-encrypted (${enc ? `secret ${enc[1]}` : disk && disk[0]})`,
			Boolean(enc) && Boolean(disk) && disk[0].includes(enc[0]));
		check('virsh dumpxml: the classification in the metadata', /<[a-z]+:classification>TOP SECRET<\/[a-z]+:classification>/.test(xml));
		await form(page).locator('xpath=..').screenshot({ path: `${SHOTS}/security-deploy.png` });
		ok('screenshot security-deploy.png');
	} finally {
		await page.unroute('**/api/vms/create');
	}
});

await step('the VM page shows the security profiles', async () => {
	const line = (n) => page.locator(`[data-gvm=vm-rows] tr[data-vm="${n}"] [data-gvm=vm-security]`);
	await page.locator(`[data-gvm=vm-rows] tr[data-vm="${SECRET_VM}"]`).waitFor({ timeout: 10000 });
	check(`${SECRET_VM}: the SECRET badge, nothing else (${await line(SECRET_VM).innerText()})`,
		(await line(SECRET_VM).locator('[data-gvm=vm-class]').textContent()) === 'SECRET' &&
		(await line(SECRET_VM).locator('[data-gvm=vm-sec-has]').count()) === 0);
	check(`${PLAIN}: no security line`, (await line(PLAIN).count()) === 0);
	if (!(can.tpm && can.secure_boot && can.disk_encryption)) return;
	await line(DEPLOYED).waitFor({ timeout: 10000 });
	const cls = await line(DEPLOYED).locator('[data-gvm=vm-class]').textContent();
	const has = await line(DEPLOYED).locator('[data-gvm=vm-sec-has]').textContent();
	check(`${DEPLOYED}: "${cls}" with "${has}"`, cls === 'TOP SECRET' && has === 'TPM · Secure Boot · encrypted disk');
	const vm = (await api('/api/vms')).vms.find((v) => v.name === DEPLOYED);
	check(`as vmmod's VM JSON has it (${JSON.stringify(vm && vm.security)})`,
		vm && same(vm.security, { classification: 'TOP SECRET', tpm: true, secure_boot: true, disk_encrypted: true }));
	const r = await fetch(`${V}/api/vms/${DEPLOYED}?remove_disk=true`, {
		method: 'DELETE', body: '{}', headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
	});
	check(`DELETE /api/vms/${DEPLOYED}?remove_disk=true: ${r.status}`, r.status === 204);
});

check('no CSP violation, page error or dialog', page.problems.length === 0 && page.dialogs.length === 0);
for (const p of page.problems) console.log('  ' + p);
await page.close();

// a host that cannot give Secure Boot (GET /api/host altered): the box is
// disabled with the reason, and SECRET is stopped before sending
const p2 = await watchedPage(ctx);
const WHY = 'secure_boot: this host lacks OVMF\'s Secure Boot firmware (test)';
await step('a feature the host cannot give is disabled with the reason', async () => {
	await p2.route('**/api/host', async (route) => {
		const r = await route.fetch();
		const j = await r.json();
		j.security = { ...j.security, secure_boot: { available: false, why: WHY } };
		await route.fulfill({ response: r, json: j });
	});
	const sent2 = [];
	p2.on('request', (r) => { if (r.url().endsWith('/api/vms/create')) sent2.push(r); });
	await login(p2);
	await form(p2).locator('summary').click();
	const why = await form(p2).locator('label[data-feature=secure_boot] [data-gvm=sec-why]').textContent();
	check(`Secure Boot disabled, with the reason (${why})`, await box(p2, 'secure_boot').isDisabled() && why === WHY &&
		(await box(p2, 'secure_boot').getAttribute('aria-describedby')).includes(
			await form(p2).locator('label[data-feature=secure_boot] [data-gvm=sec-why]').getAttribute('id')));
	await choose(p2, 'SECRET');
	const t = await rule(p2).textContent();
	check(`SECRET says the host cannot: "${t}"`, t === `SECRET requires Secure Boot, which this host cannot provide: ${WHY}` &&
		!(await box(p2, 'secure_boot').isChecked()));
	await form(p2).locator('input[name=name]').fill(REFUSED);
	await form(p2).locator('button[type=submit]').click();
	await secMsg(p2).waitFor({ timeout: 5000 });
	await p2.waitForTimeout(300);
	check(`stopped before sending (${await secMsg(p2).textContent()}; ${sent2.length} requests)`,
		sent2.length === 0 && /^Not deployed: SECRET requires Secure Boot, which this host cannot provide/.test(await secMsg(p2).textContent()));
	check('no CSP violation, page error or dialog', p2.problems.length === 0 && p2.dialogs.length === 0);
});
await ctx.close();
process.exit(fails ? 1 : 0);
