// The "USB devices" panel of the VM page: pick a VM, see the host's USB
// devices (known ones named: "Zigbee coordinator — Silicon Labs CP2102N…"),
// attach or detach with one click, and each wanted device's state
// (attached / waiting for replug / attached when the VM starts).
// mountUsb(root, live).  Device strings come from the USB descriptors of
// whatever is plugged in: text only, never markup.
import { api, el, vmPath } from './api.js';

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
	const table = el('table', { class: 'gvm-table' },
		el('thead', {}, el('tr', {}, ...['Device', 'ID', 'State', ''].map((h) => el('th', {}, h)))),
		tbody);
	root.replaceChildren(el('section', { class: 'gvm-card', id: 'usb', 'data-gvm': 'usb-panel' },
		el('h2', {}, 'USB devices', el('span', { class: 'gvm-sub' }, 'Zigbee and Z-Wave sticks, accelerators')),
		el('div', { class: 'gvm-usb-bar' }, el('label', { class: 'gvm-usb-label' }, 'VM', pick), refresh),
		msg, table));

	let host = [];
	let wanted = [];
	let current = '';
	let seen = '';
	let busy = false;

	function show(text, kind) {
		msg.textContent = text;
		msg.className = `gvm-msg gvm-msg-${kind}`;
	}

	async function load() {
		try {
			const r = await api('GET', '/api/host/devices');
			host = (r && r.usb) || [];
		} catch (e) {
			host = [];
			show(`USB devices: ${e.message}`, 'error');
		}
		wanted = [];
		if (current) {
			try {
				const r = await api('GET', vmPath(current, 'devices'));
				wanted = (r && r.usb) || [];
			} catch (e) {
				show(`${current}: ${e.message}`, 'error');
			}
		}
		render();
	}

	async function change(method, path, body, done) {
		busy = true;
		render();
		try {
			await api(method, path, body);
			show(done, 'ok');
		} catch (e) {
			show(`${current}: ${e.message}`, 'error');
		} finally {
			busy = false;
			await load();
		}
	}

	function stateCell(st) {
		return el('td', {}, el('span', { class: `gvm-usb-state gvm-usb-${st}`, 'data-state': st }, STATE_TEXT[st] || st));
	}

	function idText(d) {
		return `${d.vendor}:${d.product}` + (d.serial ? ` · ${d.serial}` : d.path ? ` · port ${d.path}` : '');
	}

	function render() {
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
					class: 'gvm-btn gvm-btn-danger', type: 'button', 'data-action': 'detach', disabled: busy,
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
					disabled: busy || !current || other || refused,
					onclick: () => change('POST', vmPath(current, 'devices'), usbBody(d),
						`${d.name || d.id}: attached to ${current}`),
				}, 'Attach'))));
		}
		tbody.replaceChildren(...(rows.length ? rows
			: [el('tr', {}, el('td', { colspan: 4, class: 'gvm-muted' }, 'No USB devices are plugged into this host.'))]));
	}

	pick.addEventListener('change', () => { current = pick.value; load(); });
	refresh.addEventListener('click', () => load());

	function onList(vms) {
		const names = [...vms.values()].map((v) => v.name).sort((a, b) => a.localeCompare(b));
		const have = [...pick.options].map((o) => o.value);
		const renamed = names.join('\n') !== have.join('\n');
		if (renamed) {
			pick.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
			if (!names.includes(current)) current = names[0] || '';
			pick.value = current;
		}
		// the list's device summary changed (plugged, unplugged, attached)
		const vm = [...vms.values()].find((v) => v.name === current);
		const sig = JSON.stringify(vm && vm.devices ? vm.devices : []);
		if (!renamed && (sig === seen || busy)) return;
		seen = sig;
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
