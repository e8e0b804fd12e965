// The PCI part of the VM page's devices panel (usb.js mounts it under the
// same VM picker): the host's PCI devices as GET /api/host/devices lists
// them ("pci": x86 builds; arm64 lists none and nothing is shown), the
// picked VM's from GET /api/vms/{name}/devices, attach with one click
// ({"pci": address}, or the whole IOMMU group as a list) and detach
// (DELETE …/devices/{address}, each member of a group).
//
// vmmod judges: a device it says cannot go (IOMMU off, a bridge, the host's
// console, a group that cannot go whole) shows vmmod's reason and a disabled
// button.  What it refuses on attach (the VM's security profile, another VM
// has it, libvirt) is shown as an error, and the rows are always reloaded
// from vmmod afterwards, so nothing is ever shown attached that is not.
// Names come from pci.ids and the accelerator list: text only, never markup.
// The deploy dialog (deploydev.js) offers PCI devices with the same name,
// badge, plan and refusal text (pciName, pciBadge, pciPlan, pciRefusal).
import { api, el, vmPath } from './api.js';

const ADDR = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

const STATE_TEXT = {
	attached: 'attached',
	ready: 'attached when the VM starts',
	detached: 'in the definition, not in the running VM',
};

// vmmod's refusals whose message does not say who refused
const HINT = {
	classification: "the VM's security profile",
	attach_failed: 'libvirt refused it',
	detach_failed: 'libvirt refused it',
	device_in_use_by_host: 'the host needs it',
};

const COLUMNS = ['Device', 'Address', 'Class', 'IOMMU group', 'Status', ''];

// Which VM has each PCI device, from the VM list's device summaries
// (GET /api/vms: devices [{id, name, state}], a PCI device's id is its
// address): address -> VM name.
export function pciOwners(vms) {
	const owners = new Map();
	for (const vm of vms.values())
		for (const d of vm.devices || [])
			if (d && typeof d.id === 'string' && ADDR.test(d.id) && !owners.has(d.id)) owners.set(d.id, vm.name);
	return owners;
}

// pci.ids' name; an older pci.ids may not know a new device yet
export function pciName(d) {
	if (d.device) return d.device;
	if (d.accelerator && d.accelerator.model) return d.accelerator.model;
	if (d.class && d.vendor) return `${d.class} (${d.vendor})`;
	return d.description || d.address;
}

// The group members that go to a VM together: its endpoints (PCI-to-PCI
// bridges in a group stay with the host, as vmmod counts them).
function groupMembers(d, byAddr) {
	const g = d.iommu_group;
	if (!g || !Array.isArray(g.devices)) return [d.address];
	return g.devices.filter((a) => a === d.address || (byAddr.has(a) && byAddr.get(a).class_id !== '0604'));
}

// What the panel offers for host device d (byAddr: the host's devices by
// address, owners: pciOwners, current: the VM the panel is for, or null):
// { can, members, why, owner } — members: the addresses an attach sends.
export function pciPlan(d, byAddr, owners, current) {
	const pt = d.passthrough || {};
	let members = [d.address];
	if (pt.code === 'iommu_group_shared') {
		members = groupMembers(d, byAddr);
		const stuck = members.map((a) => byAddr.get(a))
			.find((m) => !m || !m.passthrough || (m.passthrough.code !== 'ok' && m.passthrough.code !== 'iommu_group_shared'));
		if (stuck) {
			const also = stuck.passthrough && stuck.passthrough.reason;
			return { can: false, members, why: (pt.reason || 'its IOMMU group cannot go to a VM') + (also ? `; ${also}` : '') };
		}
	} else if (pt.possible !== true) {
		return { can: false, members, why: pt.reason || 'cannot be passed through' };
	}
	const owner = members.map((a) => owners.get(a)).find((n) => n && n !== current);
	if (owner) return { can: false, members, owner, why: `in use by ${owner}` };
	return { can: true, members };
}

// The accelerator badge ("iGPU", "NPU") of host device d, or null.
export function pciBadge(d) {
	const acc = d && d.accelerator;
	return acc && acc.type ? el('span', { class: 'gvm-badge', 'data-gvm': 'pci-accel', title: acc.model || acc.type }, acc.type) : null;
}

// Whether host device d is of the kind a template's "pci:WORD" names:
// "gpu" any display controller (PCI class 03: the iGPU or a discrete card),
// otherwise vmmod's accelerator type in lower case ("npu", "igpu").
export function pciKind(d, word) {
	const acc = d && d.accelerator && typeof d.accelerator.type === 'string' ? d.accelerator.type.toLowerCase() : '';
	if (word === 'gpu') return acc === 'igpu' || (typeof d.class_id === 'string' && d.class_id.startsWith('03'));
	return acc !== '' && acc === word;
}

// A refusal's text, with who refused when vmmod's message does not say.
export function pciRefusal(e) {
	const hint = HINT[e.code];
	return e.message + (hint && !e.message.includes(hint) ? ` (${hint})` : '');
}

export function createPci({ run }) {
	const msg = el('div', { class: 'gvm-msg gvm-hidden', role: 'status', tabindex: -1, 'data-gvm': 'pci-msg' });
	const head = () => el('thead', {}, el('tr', {}, ...COLUMNS.map((h) => el('th', { scope: 'col' }, h))));
	const tbody = el('tbody', { 'data-gvm': 'pci-rows' });
	const otherBody = el('tbody', { 'data-gvm': 'pci-other-rows' });
	const otherCount = el('span', {});
	const other = el('details', { class: 'gvm-pci-other', 'data-gvm': 'pci-other' },
		el('summary', {}, otherCount,
			el('span', { class: 'gvm-muted gvm-small' }, ' — bridges and devices that stay with the host')),
		el('div', { class: 'gvm-scroll' },
			el('table', { class: 'gvm-table', 'aria-label': 'Other PCI devices' }, head(), otherBody)));
	const node = el('div', { class: 'gvm-pci gvm-hidden', 'data-gvm': 'pci-panel' },
		el('h3', { class: 'gvm-dev-h' }, 'PCI devices',
			el('span', { class: 'gvm-sub' }, 'accelerators (iGPU, NPU) and cards, through VFIO')),
		msg,
		el('div', { class: 'gvm-scroll' },
			el('table', { class: 'gvm-table', 'aria-label': 'PCI devices' }, head(), tbody)),
		other);

	let last = null; // what render() was given last
	let refocus = null; // the address whose row gets the focus back after an action

	function say(text, kind, code) {
		msg.textContent = text;
		msg.className = `gvm-msg gvm-msg-${kind}`;
		// an error interrupts; a success waits its turn
		msg.setAttribute('role', kind === 'error' ? 'alert' : 'status');
		if (code) msg.setAttribute('data-code', code);
		else msg.removeAttribute('data-code');
	}

	function attach(vm, members, label, focusAddr) {
		refocus = focusAddr;
		run(async () => {
			try {
				await api('POST', vmPath(vm, 'devices'), { pci: members.length === 1 ? members[0] : members });
				say(`${label}: attached to ${vm}`, 'ok');
			} catch (e) {
				say(`${label} was not attached to ${vm}: ${pciRefusal(e)}`, 'error', e.code || 'error');
			}
		});
	}

	function detach(vm, ids, label, focusAddr) {
		refocus = focusAddr;
		run(async () => {
			const done = [];
			for (const id of ids) {
				try {
					await api('DELETE', vmPath(vm, 'devices/' + encodeURIComponent(id)));
					done.push(id);
				} catch (e) {
					say(`${label}: ${done.length ? `detached ${done.join(', ')}, but ` : ''}${id} could not be detached from ${vm}: ${pciRefusal(e)}`,
						'error', e.code || 'error');
					return;
				}
			}
			say(`${label}: detached from ${vm}`, 'ok');
		});
	}

	function deviceCell(d, fallbackName) {
		const facts = d ? [d.vendor, `${d.vendor_id}:${d.device_id}`, d.driver ? `driver ${d.driver}` : null].filter(Boolean) : [];
		return el('td', {},
			el('strong', {}, d ? pciName(d) : fallbackName),
			pciBadge(d),
			facts.length ? el('span', { class: 'gvm-title' }, facts.join(' · ')) : null);
	}

	function groupCell(d, address) {
		const g = d && d.iommu_group;
		if (!g) return el('td', { class: 'gvm-small gvm-muted' }, d ? 'none' : '–');
		const with_ = (g.devices || []).filter((a) => a !== address);
		return el('td', { class: 'gvm-small', 'data-group': g.id },
			`group ${g.id}`,
			with_.length ? el('span', { class: 'gvm-title' }, `with ${with_.join(', ')}`) : null);
	}

	function vmRow(v, byAddr, mine, s) {
		const d = byAddr.get(v.address);
		const label = d ? pciName(d) : v.name || v.address;
		// the VM's devices in the same IOMMU group leave together
		const gid = d && d.iommu_group ? d.iommu_group.id : null;
		const ids = gid === null ? [v.id]
			: mine.filter((w) => { const h = byAddr.get(w.address); return h && h.iommu_group && h.iommu_group.id === gid; }).map((w) => w.id);
		const text = ids.length > 1 ? `Detach group (${ids.length})` : 'Detach';
		return el('tr', { 'data-pci': v.address, 'data-wanted': 'yes' },
			deviceCell(d, label),
			el('td', { class: 'gvm-mono gvm-small' }, v.address),
			el('td', { class: 'gvm-small' }, d ? d.class || `class ${d.class_id}` : '–'),
			groupCell(d, v.address),
			el('td', {}, el('span', { class: `gvm-usb-state gvm-usb-${v.state}`, 'data-state': v.state }, STATE_TEXT[v.state] || v.state)),
			el('td', {}, el('button', {
				class: 'gvm-btn gvm-btn-danger', type: 'button', 'data-action': 'detach', disabled: s.busy,
				// the visible text first (WCAG "label in name"), then what and where
				'aria-label': `${text}: ${label}, ${v.address}, from ${s.current}`,
				onclick: () => detach(s.current, ids, ids.length > 1 ? `${label} and its group` : label, v.address),
			}, text)));
	}

	function hostRow(d, plan, s) {
		const label = pciName(d);
		const group = plan.members.length > 1;
		let status;
		if (plan.can)
			status = el('span', { class: 'gvm-muted gvm-small' },
				group ? `free; goes with ${plan.members.filter((a) => a !== d.address).join(', ')}` : 'free');
		else
			status = el('span', { class: plan.owner ? 'gvm-muted gvm-small' : 'gvm-pci-why gvm-small', 'data-gvm': 'pci-why' }, plan.why);
		const what = group ? `${label} and its IOMMU group` : label;
		const text = group ? `Attach group (${plan.members.length})` : 'Attach';
		return el('tr', { 'data-pci': d.address, 'data-wanted': 'no', 'data-possible': plan.can ? 'yes' : 'no' },
			deviceCell(d),
			el('td', { class: 'gvm-mono gvm-small' }, d.address),
			el('td', { class: 'gvm-small' }, d.class || `class ${d.class_id}`),
			groupCell(d, d.address),
			el('td', {}, status),
			el('td', {}, el('button', {
				class: 'gvm-btn gvm-btn-primary', type: 'button',
				'data-action': group ? 'attach-group' : 'attach',
				disabled: s.busy || !s.current || !plan.can,
				'aria-label': `${text}: ${label}, ${d.address}${s.current ? `, to ${s.current}` : ''}`,
				onclick: () => attach(s.current, plan.members, what, d.address),
			}, text)));
	}

	// s: { host: [pci devices], vm: [the VM's], current, busy, owners }
	function render(s) {
		last = s;
		const host = s.host || [];
		const mine = s.vm || [];
		node.classList.toggle('gvm-hidden', !host.length && !mine.length);
		if (!host.length && !mine.length) return false;
		// keep the keyboard where it was: rows are rebuilt
		const active = document.activeElement;
		const wasIn = active && node.contains(active) && active.closest('tr[data-pci]');
		if (wasIn && !refocus) refocus = wasIn.getAttribute('data-pci');

		const byAddr = new Map(host.map((d) => [d.address, d]));
		const taken = new Set(mine.map((v) => v.address));
		const rows = mine.map((v) => vmRow(v, byAddr, mine, s));
		const rest = [];
		for (const d of host) {
			if (taken.has(d.address)) continue;
			const plan = pciPlan(d, byAddr, s.owners || new Map(), s.current);
			// accelerators are always in view, with their reason when they cannot go
			if (d.accelerator || plan.can || plan.owner) rows.push(hostRow(d, plan, s));
			else rest.push(hostRow(d, plan, s));
		}
		tbody.replaceChildren(...(rows.length ? rows
			: [el('tr', {}, el('td', { colspan: COLUMNS.length, class: 'gvm-muted' },
				'No accelerator or passable PCI device on this host (the other devices below say why).'))]));
		otherBody.replaceChildren(...rest);
		otherCount.textContent = `Other PCI devices (${rest.length})`;
		other.classList.toggle('gvm-hidden', !rest.length);

		if (refocus && !s.busy) {
			const tr = [...node.querySelectorAll('tr[data-pci]')].find((r) => r.getAttribute('data-pci') === refocus);
			const b = tr && tr.querySelector('button');
			refocus = null;
			if (b && !b.disabled) b.focus();
			else if (!msg.classList.contains('gvm-hidden')) msg.focus();
		}
		return true;
	}

	return { node, render, rerender: () => last && render(last) };
}
