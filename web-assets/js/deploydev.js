// The deploy dialog's device picker: a template that names device kinds it
// wants ("wants_devices") gets a choice per host device of those kinds, and
// the picked ones go into the VM's definition at deploy time (devices of
// POST /api/vms/create):
//   "usb:zigbee", "usb:zwave" (Home Assistant): a checkbox per plugged-in
//     stick that is free, ticked when it is the only one (devices.usb);
//   "pci:gpu", "pci:npu" (Ubuntu Server for ML): a checkbox per host PCI
//     device of that kind (pci.js's pciKind), none ticked.  A device vmmod
//     says cannot go, or another VM has, is listed with the reason and a
//     disabled box; one whose IOMMU group must go whole brings its group, as
//     the devices panel attaches it (devices.pci).  A host that lists no PCI
//     device (arm64) shows no PCI part.
// A refusal that concerns the PCI picks (the security classification, a
// device that cannot go) is shown next to them; nothing is created then.
// securityChoices: the "Security" part (collapsed): a classification and
// the TPM, Secure Boot and disk encryption boxes; a classification ticks and
// locks what it requires and says why, a request it forbids (PCI picks for
// SECRET and above, a feature this host cannot give) is not sent, and
// vmmod's refusal of a profile is shown there.
// Device strings come from USB descriptors and pci.ids: text only, never
// markup.
import { api, el } from './api.js';
import { pciBadge, pciKind, pciName, pciOwners, pciPlan, pciRefusal } from './pci.js';

let hostDevices = null; // one GET /api/host/devices for every template card

function loadHost() {
	if (!hostDevices) {
		hostDevices = api('GET', '/api/host/devices').then((r) => ({
			usb: (r && Array.isArray(r.usb) && r.usb) || [],
			pci: (r && Array.isArray(r.pci) && r.pci) || [],
		}), () => ({ usb: [], pci: [] }));
	}
	return hostDevices;
}

// Forget the cached list (a stick plugged in since): the next card asks again.
export function refreshDeviceChoices() { hostDevices = null; }

// vmmod's PCI verdict codes (pci.c): a refusal with one is about the picks
const PCI_CODES = new Set(['invalid_device', 'device_absent', 'iommu_off', 'not_passthrough_capable',
	'device_in_use_by_host', 'iommu_group_shared', 'not_built']);
const KIND_TEXT = { gpu: 'GPU', igpu: 'iGPU', npu: 'NPU' };

let ids = 0; // for aria-describedby

function usbChoices(kinds) {
	const list = el('div', { class: 'gvm-devpick-list', 'data-gvm': 'deploy-devices' },
		el('span', { class: 'gvm-muted gvm-small' }, 'looking for devices…'));
	const node = el('fieldset', { class: 'gvm-devpick' },
		el('legend', { class: 'gvm-small' }, `Devices (${kinds.join(', ')})`), list);
	const boxes = [];
	loadHost().then(({ usb }) => {
		const match = usb.filter((d) => kinds.includes(d.kind) && d.passable !== false);
		if (!match.length) {
			list.replaceChildren(el('span', { class: 'gvm-muted gvm-small' },
				`No ${kinds.join(' or ')} stick is plugged in — you can attach one later.`));
			return;
		}
		list.replaceChildren(...match.map((d) => {
			const busy = Boolean(d.attached_to);
			const box = el('input', { type: 'checkbox', name: 'device', value: d.id, disabled: busy, checked: !busy && match.length === 1 });
			boxes.push({ box, d });
			return el('label', { class: 'gvm-check gvm-small', 'data-usb': d.id }, box, ' ', d.name || d.id,
				busy ? el('span', { class: 'gvm-muted' }, ` — in use by ${d.attached_to}`) : null);
		}));
	});
	function selected() {
		return boxes.filter(({ box }) => box.checked).map(({ d }) => {
			const u = { vendor: d.vendor, product: d.product };
			if (d.serial) u.serial = d.serial;
			return u;
		});
	}
	return { node, selected };
}

function pciChoices(kinds, live) {
	const names = kinds.map((k) => KIND_TEXT[k] || k);
	const what = names.join(', ');
	const list = el('div', { class: 'gvm-devpick-list', 'data-gvm': 'deploy-pci-list' });
	const msg = el('div', { class: 'gvm-msg gvm-small gvm-hidden', role: 'alert', 'data-gvm': 'deploy-pci-msg' });
	// hidden until the host is known to list PCI devices
	const node = el('fieldset', { class: 'gvm-devpick gvm-hidden', 'data-gvm': 'deploy-pci' },
		el('legend', { class: 'gvm-small' }, `PCI devices (${what})`), list, msg);
	let host = null;
	let owners = new Map();
	let seenOwners = '';
	const picked = new Set(); // the addresses ticked, kept across re-renders
	let rows = []; // { box, plan }

	function render() {
		if (!host) return;
		node.classList.toggle('gvm-hidden', !host.length);
		if (!host.length) return;
		const byAddr = new Map(host.map((d) => [d.address, d]));
		const match = host.filter((d) => kinds.some((k) => pciKind(d, k)));
		// the keyboard stays on the box it was on: the rows are rebuilt
		const focused = node.contains(document.activeElement) && document.activeElement.value;
		rows = [];
		if (!match.length) {
			list.replaceChildren(el('span', { class: 'gvm-muted gvm-small' }, `This host has no ${names.join(' or ')} to pass through.`));
			return;
		}
		list.replaceChildren(...match.map((d) => {
			const plan = pciPlan(d, byAddr, owners, null);
			const others = plan.members.filter((a) => a !== d.address);
			const whyId = `gvm-pci-why-${++ids}`;
			const box = el('input', {
				type: 'checkbox', name: 'pci', value: d.address, disabled: !plan.can,
				checked: plan.can && picked.has(d.address), 'aria-describedby': whyId,
				onchange: () => { if (box.checked) picked.add(d.address); else picked.delete(d.address); },
			});
			rows.push({ box, plan });
			let note;
			if (!plan.can) note = el('span', { class: plan.owner ? 'gvm-muted' : 'gvm-pci-why', 'data-gvm': 'pci-why', id: whyId }, plan.why);
			else if (others.length) note = el('span', { class: 'gvm-muted', id: whyId }, `goes with its IOMMU group: ${others.join(', ')}`);
			else note = el('span', { class: 'gvm-muted', id: whyId }, 'free');
			return el('label', { class: 'gvm-check gvm-small gvm-devpick-pci', 'data-pci': d.address, 'data-possible': plan.can ? 'yes' : 'no' },
				box,
				el('span', {},
					el('span', {}, pciName(d)), pciBadge(d),
					el('span', { class: 'gvm-devpick-facts' },
						el('span', { class: 'gvm-mono' }, d.address), ' · ', note)));
		}));
		const back = focused && rows.find((r) => r.box.value === focused);
		if (back) back.box.focus();
	}

	loadHost().then(({ pci }) => { host = pci; render(); });
	// which VM has which device follows the VM list
	if (live) {
		live.subscribe((vms) => {
			owners = pciOwners(vms);
			const sig = JSON.stringify([...owners]);
			if (sig === seenOwners) return;
			seenOwners = sig;
			render();
		});
	}

	function selected() {
		const out = [];
		for (const { box, plan } of rows)
			if (box.checked && !box.disabled)
				for (const a of plan.members) if (!out.includes(a)) out.push(a);
		return out;
	}

	// what became of a request that carried `sent` (the addresses)
	function outcome(e, sent) {
		if (!e || !sent.length || !(PCI_CODES.has(e.code) || /\bPCI\b|devices\.pci/.test(e.message))) {
			msg.classList.add('gvm-hidden');
			msg.textContent = '';
			msg.removeAttribute('data-code');
			return;
		}
		msg.textContent = `Not deployed: ${pciRefusal(e)}`;
		msg.className = 'gvm-msg gvm-msg-error gvm-small';
		msg.setAttribute('data-code', e.code || 'error');
		// vmmod may see the devices differently by now
		refreshDeviceChoices();
		loadHost().then(({ pci }) => { host = pci; render(); });
	}
	return { node, selected, outcome };
}

// deviceChoices(template, live) -> { node, devices(), outcome(error) } or
// null when the template wants no devices.  devices() is the request's
// "devices" object ({usb, pci}) or null when none is picked; outcome(error
// or null) after the request.  live (live.js) keeps "in use by" current.
export function deviceChoices(t, live) {
	const wants = t.wants_devices || [];
	const usbKinds = wants.filter((k) => k.startsWith('usb:')).map((k) => k.slice(4));
	const pciKinds = wants.filter((k) => k.startsWith('pci:')).map((k) => k.slice(4));
	const usb = usbKinds.length ? usbChoices(usbKinds) : null;
	const pci = pciKinds.length ? pciChoices(pciKinds, live) : null;
	if (!usb && !pci) return null;
	const node = usb && pci ? el('div', { class: 'gvm-devpick-all' }, usb.node, pci.node) : (usb || pci).node;
	let sent = [];
	function devices() {
		const u = usb ? usb.selected() : [];
		sent = pci ? pci.selected() : [];
		if (!u.length && !sent.length) return null;
		const d = {};
		if (u.length) d.usb = u;
		if (sent.length) d.pci = sent;
		return d;
	}
	function outcome(e) {
		if (pci) pci.outcome(e, sent);
	}
	// the PCI addresses ticked now (with their groups), for the security part
	function pciPicked() { return pci ? pci.selected() : []; }
	return { node, devices, outcome, pciPicked };
}

// ---- the security profile: classification, tpm, secure_boot and
// disk_encryption of POST /api/vms/create, held to vmmod's policy before the
// request is sent: GET /api/host's "classifications" (profile.c's table:
// each {name, requires, recommends, pci}).
const FEATURES = [
	{ key: 'tpm', label: 'TPM 2.0 (emulated by swtpm)', says: 'a TPM' },
	{ key: 'secure_boot', label: 'Secure Boot (OVMF, Microsoft keys)', says: 'Secure Boot' },
	{ key: 'disk_encryption', label: 'Encrypted disk (LUKS)', says: 'disk encryption' },
];
// host.classifications -> { classes, REQUIRES, RECOMMENDS, NO_PCI }
function policyOf(host) {
	const p = { classes: [], REQUIRES: {}, RECOMMENDS: {}, NO_PCI: new Set() };
	for (const c of (host && Array.isArray(host.classifications)) ? host.classifications : []) {
		if (!c || typeof c.name !== 'string') continue;
		const list = (v) => (Array.isArray(v) ? v.filter((k) => FEATURES.some((f) => f.key === k)) : []);
		p.classes.push(c.name);
		if (list(c.requires).length) p.REQUIRES[c.name] = list(c.requires);
		if (list(c.recommends).length) p.RECOMMENDS[c.name] = list(c.recommends);
		if (c.pci === false) p.NO_PCI.add(c.name);
	}
	return p;
}
// vmmod's codes for a refused profile (deploy.c)
const SEC_CODES = new Set(['classification', 'bad_classification', 'tpm_unavailable', 'secure_boot_unavailable']);
const SEC_MSG = /^(classification|tpm|secure_boot|disk_encryption):/;

function andList(words) {
	return words.length < 2 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

// securityChoices(host, pciPicked) -> { node, update(), check(), fields(),
// refuse(text), outcome(error) }.  host: GET /api/host, whose "security"
// says which features this host can give (a feature it cannot give is a
// disabled box with vmmod's reason); pciPicked(): the PCI addresses ticked.
// Choosing a classification ticks and locks what it requires; check() is
// what stops the request (a requirement the host cannot meet, PCI picks a
// classification forbids), or null; fields() the request's fields, only
// those set.
export function securityChoices(host, pciPicked) {
	const avail = (host && host.security && typeof host.security === 'object') ? host.security : {};
	const { classes, REQUIRES, RECOMMENDS, NO_PCI } = policyOf(host);
	const why = {}; // feature -> why this host cannot give it
	for (const f of FEATURES) {
		const a = avail[f.key];
		if (a && a.available === false) why[f.key] = typeof a.why === 'string' && a.why ? a.why : 'not available on this host';
	}
	const n = ++ids;
	const ruleId = `gvm-sec-rule-${n}`;
	const select = el('select', { class: 'gvm-input', name: 'classification', 'data-gvm': 'deploy-class', 'aria-describedby': ruleId },
		el('option', { value: '' }, 'None'), ...classes.map((c) => el('option', { value: c }, c)));
	const want = {}; // what the user ticked, back when a lock goes
	const boxes = {};
	const rows = FEATURES.map((f) => {
		const noteId = `gvm-sec-why-${n}-${f.key}`;
		const box = el('input', {
			type: 'checkbox', name: f.key, 'data-gvm': `deploy-${f.key}`, disabled: Boolean(why[f.key]),
			'aria-describedby': `${noteId} ${ruleId}`,
			onchange: () => { want[f.key] = box.checked; update(); },
		});
		boxes[f.key] = box;
		const note = el('span', { class: why[f.key] ? 'gvm-sec-note gvm-pci-why' : 'gvm-sec-note gvm-muted', id: noteId, 'data-gvm': 'sec-why' }, why[f.key] || '');
		return el('label', { class: 'gvm-check gvm-small gvm-sec-feature', 'data-feature': f.key, 'data-possible': why[f.key] ? 'no' : 'yes' },
			box, el('span', {}, f.label, note));
	});
	const rule = el('p', { class: 'gvm-small gvm-sec-rule', id: ruleId, 'data-gvm': 'deploy-sec-rule', 'aria-live': 'polite' });
	const msg = el('div', { class: 'gvm-msg gvm-small gvm-hidden', role: 'alert', 'data-gvm': 'deploy-sec-msg' });
	const chosen = el('span', { class: 'gvm-muted gvm-small', 'data-gvm': 'deploy-sec-summary' });
	const node = el('details', { class: 'gvm-sec', 'data-gvm': 'deploy-security' },
		el('summary', {}, 'Security ', chosen),
		el('div', { class: 'gvm-sec-body' },
			el('label', {}, 'Classification', select), ...rows, rule, msg));
	let problem = null;

	function update() {
		const c = select.value;
		const req = REQUIRES[c] || [];
		for (const f of FEATURES) {
			const locked = req.includes(f.key);
			const box = boxes[f.key];
			box.checked = !why[f.key] && (locked || Boolean(want[f.key]));
			box.disabled = locked || Boolean(why[f.key]);
			box.parentNode.setAttribute('data-locked', locked ? 'yes' : 'no');
		}
		const lines = [];
		problem = null;
		if (req.length) {
			lines.push(`${c} requires ${andList(req.map((k) => FEATURES.find((f) => f.key === k).says))}` +
				(NO_PCI.has(c) ? ' and allows no PCI passthrough' : ''));
			const missing = req.filter((k) => why[k]);
			if (missing.length)
				problem = `${c} requires ${andList(missing.map((k) => FEATURES.find((f) => f.key === k).says))}, which this host cannot provide: ${missing.map((k) => why[k]).join('; ')}`;
		} else if (RECOMMENDS[c]) {
			lines.push(`${c} recommends ${andList(RECOMMENDS[c].map((k) => FEATURES.find((f) => f.key === k).says))}`);
		}
		const picked = NO_PCI.has(c) && pciPicked ? pciPicked() : [];
		if (!problem && picked.length)
			problem = `${c} allows no PCI passthrough: untick ${picked.join(', ')} or choose a lower classification`;
		rule.textContent = problem || lines.join('');
		rule.className = `gvm-small gvm-sec-rule${problem ? ' gvm-fit-no' : ''}`;
		rule.setAttribute('data-problem', problem ? 'yes' : 'no');
		const on = FEATURES.filter((f) => boxes[f.key].checked).map((f) => f.says);
		chosen.textContent = c || on.length ? `— ${[c, ...on].filter(Boolean).join(' · ')}` : '— none';
	}
	select.addEventListener('change', () => {
		for (const k of RECOMMENDS[select.value] || []) if (want[k] === undefined) want[k] = true;
		hide();
		update();
	});

	function hide() {
		msg.classList.add('gvm-hidden');
		msg.textContent = '';
		msg.removeAttribute('data-code');
	}
	function refuse(text, code) {
		msg.textContent = `Not deployed: ${text}`;
		msg.className = 'gvm-msg gvm-msg-error gvm-small';
		msg.setAttribute('data-code', code);
		node.open = true;
	}
	function check() {
		update();
		return problem;
	}
	function fields() {
		const o = {};
		if (select.value) o.classification = select.value;
		for (const f of FEATURES) if (boxes[f.key].checked && !why[f.key]) o[f.key] = true;
		return o;
	}
	// what became of the request: vmmod's refusal of the profile is shown here
	function outcome(e) {
		if (e && (SEC_CODES.has(e.code) || SEC_MSG.test(e.message || ''))) refuse(e.message, e.code || 'error');
		else hide();
	}
	update();
	return { node, update, check, fields, refuse: (t) => refuse(t, 'dialog'), outcome };
}
