// The deploy dialog's device picker: a template that names device kinds it
// wants ("wants_devices": ["usb:zigbee", "usb:zwave"] for Home Assistant)
// gets a checkbox per plugged-in host device of those kinds that is free,
// so the stick goes into the VM's definition at deploy time (devices.usb of
// POST /api/vms/create).  Device strings come from USB descriptors: text
// only, never markup.
import { api, el } from './api.js';

let hostDevices = null; // one GET /api/host/devices for every template card

function loadHost() {
	if (!hostDevices)
		hostDevices = api('GET', '/api/host/devices').then((r) => (r && r.usb) || [], () => []);
	return hostDevices;
}

// Forget the cached list (a stick plugged in since): the next card asks again.
export function refreshDeviceChoices() { hostDevices = null; }

// deviceChoices(template) -> { node, selected() } or null when the template
// wants no devices.  selected() is the devices.usb array for the request.
export function deviceChoices(t) {
	const kinds = (t.wants_devices || []).filter((k) => k.startsWith('usb:')).map((k) => k.slice(4));
	if (!kinds.length) return null;
	const list = el('div', { class: 'gvm-devpick-list', 'data-gvm': 'deploy-devices' },
		el('span', { class: 'gvm-muted gvm-small' }, 'looking for devices…'));
	const node = el('fieldset', { class: 'gvm-devpick' },
		el('legend', { class: 'gvm-small' }, `Devices (${kinds.join(', ')})`), list);
	const boxes = [];
	loadHost().then((usb) => {
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
