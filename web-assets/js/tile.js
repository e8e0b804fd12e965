// The dashboard tile: Guardian's .nav-tile markup with running/total VMs,
// a row per VM with quick start/stop, "Open Web UI" once the VM's web UI
// answers ("preparing…" before), and a link to the VM page.  Mounted into
// any element: mountTile(el, live, {pageUrl}).
import { api, el, vmPath } from './api.js';

const ICON_PATH = 'M4 5h16v10H4zM2 17h20v2H2zM7 8h4v1.5H7zM7 11h7v1.5H7z';

function icon() {
	const ns = 'http://www.w3.org/2000/svg';
	const svg = document.createElementNS(ns, 'svg');
	svg.setAttribute('viewBox', '0 0 24 24');
	svg.setAttribute('width', '24');
	svg.setAttribute('height', '24');
	svg.setAttribute('aria-hidden', 'true');
	const p = document.createElementNS(ns, 'path');
	p.setAttribute('d', ICON_PATH);
	p.setAttribute('fill', 'currentColor');
	svg.append(p);
	return svg;
}

const MODE_TEXT = { sse: 'live', poll: 'polling every 2 s', down: 'offline', connecting: 'connecting…' };

export function mountTile(root, live, opts = {}) {
	const summary = el('p', { 'data-gvm': 'summary' }, 'loading…');
	const running = el('strong', { 'data-gvm': 'running' }, '–');
	const total = el('span', { 'data-gvm': 'total' }, '–');
	const list = el('ul', { class: 'gvm-tile-list', 'data-gvm': 'tile-list' });
	const liveBadge = el('span', { class: 'gvm-live' });
	const msg = el('div', { class: 'gvm-msg gvm-msg-error gvm-small gvm-hidden', role: 'alert' });
	const tile = el('div', { class: 'nav-tile gvm-tile', 'data-gvm': 'tile' },
		el('div', { class: 'nav-tile-header' },
			el('div', { class: 'nav-tile-icon' }, icon()),
			el('div', { class: 'nav-tile-info' }, el('h4', {}, 'Virtual Machines'), summary)),
		list,
		msg,
		el('div', { class: 'nav-tile-footer' },
			el('span', { class: 'nav-tile-stat' }, running, ' / ', total, ' running ', liveBadge),
			el('a', { class: 'nav-tile-arrow', href: opts.pageUrl || '#vms', 'aria-label': 'Manage virtual machines' }, 'Manage →')));
	root.replaceChildren(tile);

	const busy = new Set();

	async function act(vm, action) {
		busy.add(vm.name);
		render(live.vms, live.mode);
		msg.classList.add('gvm-hidden');
		try {
			const r = await api('POST', vmPath(vm.name, action), {});
			if (r && r.vm) live.put(r.vm);
		} catch (e) {
			msg.textContent = `${vm.name}: ${e.message}`;
			msg.classList.remove('gvm-hidden');
		} finally {
			busy.delete(vm.name);
			render(live.vms, live.mode);
		}
	}

	// A row is a clone of a prototype (running or not) with the VM's strings
	// set as text; one click handler on the list finds the VM by its row.
	const protos = {};
	const rowVm = new WeakMap();
	function proto(on) {
		return protos[on] || (protos[on] = el('li', {},
			el('span', {}),
			el('span', { class: 'gvm-name' }),
			el('button', { class: 'gvm-btn' + (on ? '' : ' gvm-btn-primary'), type: 'button', 'data-action': on ? 'stop' : 'start' },
				on ? 'Stop' : 'Start')));
	}

	function row(vm) {
		const on = vm.state === 'running';
		const li = proto(on).cloneNode(true);
		const [state, name, b] = li.children;
		li.setAttribute('data-vm', vm.name);
		state.className = `gvm-state gvm-state-${vm.state}`;
		state.title = vm.state;
		name.title = vm.name;
		name.textContent = vm.name;
		const missing = (vm.devices || []).filter((d) => d.state === 'waiting');
		if (missing.length) {
			const what = missing.map((d) => d.name || d.id).join(', ');
			li.insertBefore(el('span', {
				class: 'gvm-warn', 'data-gvm': 'usb-missing', role: 'img',
				title: `USB device missing, waiting for replug: ${what}`,
				'aria-label': `USB device missing: ${what}`,
			}, '⚠'), b);
		}
		if (on && vm.web_url) {
			if (vm.web_ready === false) li.insertBefore(el('span', { class: 'gvm-muted gvm-small' }, 'preparing…'), b);
			else if (/^https?:\/\//.test(vm.web_url)) {
				li.insertBefore(el('a', { class: 'gvm-btn', href: vm.web_url, target: '_blank', rel: 'noopener noreferrer' }, 'Open Web UI'), b);
			}
		}
		b.disabled = busy.has(vm.name) || !(on || vm.state === 'shutoff' || vm.state === 'crashed');
		rowVm.set(li, vm);
		return li;
	}
	list.addEventListener('click', (ev) => {
		const b = ev.target.closest('button[data-action]');
		const vm = b && !b.disabled && rowVm.get(b.closest('li'));
		if (vm) act(vm, b.dataset.action);
	});

	function render(vms, mode) {
		liveBadge.className = `gvm-live gvm-live-${mode}`;
		liveBadge.textContent = MODE_TEXT[mode] || mode;
		if (!live.loaded) return; // "loading…" until the first list
		const all = [...vms.values()].sort((a, b) => a.name.localeCompare(b.name));
		const n = all.filter((v) => v.state === 'running').length;
		running.textContent = String(n);
		total.textContent = String(all.length);
		summary.textContent = all.length === 0 ? 'No virtual machines yet' : `${n} of ${all.length} running`;
		list.replaceChildren(...(all.length ? all.map(row) : [el('li', { class: 'gvm-tile-empty' }, 'Deploy Home Assistant or a NAS from the VM page.')]));
	}

	live.subscribe(render);
	return tile;
}
