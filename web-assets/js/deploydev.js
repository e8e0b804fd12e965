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
	return { node, devices, outcome };
}
