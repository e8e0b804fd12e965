// The devices panel of the VM page: pick a VM, see the host's USB devices
// (known ones named: "Zigbee coordinator — Silicon Labs CP2102N…"), attach
// or detach with one click, and each wanted device's state (attached /
// waiting for replug / attached when the VM starts).  On x86 hosts the PCI
// section (pci.js) sits under the same VM picker; hosts that list no PCI
// device (arm64) show none.  mountUsb(root, live).  Device strings come
// from the USB descriptors of whatever is plugged in: text only, never
// markup.
import { api, el, vmPath } from './api.js';
import { createPci, pciOwners } from './pci.js';

const STATE_TEXT = {
	attached: 'attached',
	waiting: 'waiting for replug',
	ready: 'attached when the VM starts',
	detached: 'plugged in, not in the VM',
};

function usbBody(d) {
	const usb = { vendor: d.vendor, product: d.product };
	if (d.serial) usb.serial = d.serial;
	else if (d.path) usb.path = d.path;
	return { usb };
}

export function mountUsb(root, live) {
	const msg = el('div', { class: 'gvm-msg gvm-hidden', role: 'status', 'data-gvm': 'usb-msg' });
	const pick = el('select', { class: 'gvm-input gvm-usb-pick', 'data-gvm': 'usb-vm', 'aria-label': 'VM' });
	const refresh = el('button', { class: 'gvm-btn', type: 'button', 'data-gvm': 'usb-refresh' }, 'Rescan');
	const tbody = el('tbody', { 'data-gvm': 'usb-rows' });
	const table = el('table', { class: 'gvm-table', 'aria-label': 'USB devices' },
		el('thead', {}, el('tr', {}, ...['Device', 'ID', 'State', ''].map((h) => el('th', { scope: 'col' }, h)))),
		tbody);
	const title = el('h2', {}, 'USB devices', el('span', { class: 'gvm-sub' }, 'Zigbee and Z-Wave sticks, accelerators'));
	// shown with the PCI section only: the card is then "Devices"
	const usbHead = el('h3', { class: 'gvm-dev-h gvm-hidden' }, 'USB devices',
		el('span', { class: 'gvm-sub' }, 'Zigbee and Z-Wave sticks, NCS2'));
	const pci = createPci({ run });
	root.replaceChildren(el('section', { class: 'gvm-card', id: 'usb', 'data-gvm': 'usb-panel' },
		title,
		el('div', { class: 'gvm-usb-bar' }, el('label', { class: 'gvm-usb-label' }, 'VM', pick), refresh),
		msg, usbHead, table, pci.node));

	let host = [];
	let wanted = [];
	let hostPci = [];
	let wantedPci = [];
	let owners = new Map();
	let current = '';
	let seen = '';
	let seenOwners = '';
	let busy = false;
	let switching = false; // another VM picked, its devices not loaded yet
	let loads = 0;

	function show(text, kind) {
		msg.textContent = text;
		msg.className = `gvm-msg gvm-msg-${kind}`;
	}

	// The newest load wins: the rows never show (or act for) another VM
	// than the picked one.
	async function load() {
		const seq = ++loads;
		const vm = current;
		let h = [], hp = [], w = [], wp = [], err = null;
		try {
			const r = await api('GET', '/api/host/devices');
			h = (r && r.usb) || [];
			hp = (r && Array.isArray(r.pci) && r.pci) || [];
		} catch (e) {
			err = `USB devices: ${e.message}`;
		}
		if (vm) {
			try {
				const r = await api('GET', vmPath(vm, 'devices'));
				w = (r && r.usb) || [];
				wp = (r && Array.isArray(r.pci) && r.pci) || [];
			} catch (e) {
				err = `${vm}: ${e.message}`;
			}
		}
		if (seq !== loads) return;
		[host, hostPci, wanted, wantedPci] = [h, hp, w, wp];
		if (err) show(err, 'error');
		switching = false;
		render();
	}

	// One action at a time: every button is off while it runs, and the rows
	// are reloaded from vmmod afterwards, whatever happened.
	async function run(task) {
		busy = true;
		render();
		try {
			await task();
		} finally {
			busy = false;
			await load();
		}
	}

	function change(method, path, body, done) {
		return run(async () => {
			try {
				await api(method, path, body);
				show(done, 'ok');
			} catch (e) {
				show(`${current}: ${e.message}`, 'error');
			}
		});
	}

	function stateCell(st) {
		return el('td', {}, el('span', { class: `gvm-usb-state gvm-usb-${st}`, 'data-state': st }, STATE_TEXT[st] || st));
	}

	function idText(d) {
		return `${d.vendor}:${d.product}` + (d.serial ? ` · ${d.serial}` : d.path ? ` · port ${d.path}` : '');
	}

	function render() {
		const off = busy || switching;
		const rows = [];
		const mine = new Set(wanted.map((d) => d.id));
		const byId = new Map(host.map((d) => [d.id, d]));
		for (const d of wanted) {
			// the host list names a plugged-in device best ("Zigbee coordinator — …")
			const name = (byId.get(d.id) || {}).name || d.name || d.id;
			rows.push(el('tr', { 'data-usb': d.id, 'data-wanted': 'yes' },
				el('td', {}, el('strong', {}, name)),
				el('td', { class: 'gvm-small gvm-muted' }, idText(d)),
				stateCell(d.state),
				el('td', {}, el('button', {
					class: 'gvm-btn gvm-btn-danger', type: 'button', 'data-action': 'detach', disabled: off,
					onclick: () => change('DELETE', vmPath(current, 'devices/' + encodeURIComponent(d.id)), null,
						`${name}: detached from ${current}`),
				}, 'Detach'))));
		}
		for (const d of host) {
			if (mine.has(d.id)) continue;
			const other = d.attached_to && d.attached_to !== current;
			const refused = d.passable === false; // USB storage: may be the host's disk
			const note = other ? `in use by ${d.attached_to}` : refused ? 'storage: stays with the host' : 'free';
			rows.push(el('tr', { 'data-usb': d.id, 'data-wanted': 'no' },
				el('td', {}, el('strong', {}, d.name || d.id)),
				el('td', { class: 'gvm-small gvm-muted' }, idText(d)),
				el('td', {}, el('span', { class: 'gvm-muted gvm-small' }, note)),
				el('td', {}, el('button', {
					class: 'gvm-btn gvm-btn-primary', type: 'button', 'data-action': 'attach',
					disabled: off || !current || other || refused,
					onclick: () => change('POST', vmPath(current, 'devices'), usbBody(d),
						`${d.name || d.id}: attached to ${current}`),
				}, 'Attach'))));
		}
		tbody.replaceChildren(...(rows.length ? rows
			: [el('tr', {}, el('td', { colspan: 4, class: 'gvm-muted' }, 'No USB devices are plugged into this host.'))]));
		const withPci = pci.render({ host: hostPci, vm: wantedPci, current, busy: off, owners });
		title.firstChild.textContent = withPci ? 'Devices' : 'USB devices';
		title.lastChild.textContent = withPci ? 'USB sticks and PCI accelerators for a VM' : 'Zigbee and Z-Wave sticks, accelerators';
		usbHead.classList.toggle('gvm-hidden', !withPci);
	}

	pick.addEventListener('change', () => {
		current = pick.value;
		switching = true;
		render();
		load();
	});
	refresh.addEventListener('click', () => load());

	function onList(vms) {
		const names = [...vms.values()].map((v) => v.name).sort((a, b) => a.localeCompare(b));
		const have = [...pick.options].map((o) => o.value);
		const renamed = names.join('\n') !== have.join('\n');
		if (renamed) {
			pick.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
			if (!names.includes(current)) {
				current = names[0] || '';
				switching = true;
			}
			pick.value = current;
		}
		// which VM holds which PCI device (the other VMs' summaries)
		owners = pciOwners(vms);
		const osig = JSON.stringify([...owners]);
		// the list's device summary changed (plugged, unplugged, attached)
		const vm = [...vms.values()].find((v) => v.name === current);
		const sig = JSON.stringify(vm && vm.devices ? vm.devices : []);
		if (!renamed && (sig === seen || busy)) {
			if (osig !== seenOwners && !busy) {
				seenOwners = osig;
				render();
			}
			return;
		}
		seen = sig;
		seenOwners = osig;
		if (switching) render();
		load();
	}
	// The panel is below the VM list: it starts a frame after the list is
	// on screen, then follows every change.
	let state = 'new'; // 'new' | 'waiting' | 'on'
	live.subscribe((vms) => {
		if (state === 'on') onList(vms);
		else if (state === 'new' && live.loaded) {
			state = 'waiting';
			requestAnimationFrame(() => setTimeout(() => { state = 'on'; onList(live.vms); }, 0));
		}
	});
	return root;
}
