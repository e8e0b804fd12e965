// The VM page: the list (state, RAM, vCPU, IP, actions; a VM's security
// profile under its name), delete with a confirmation dialog and the
// remove-disk choice, and deploying from the template catalog with RAM-fit
// hints, device picks, a security profile and a live progress bar per job.
// mountVms(root, live).  Every name and guest string goes in as text.
import { api, el, fmtBytes, fmtMB, openConsole, vmPath } from './api.js';
import { deviceChoices, securityChoices } from './deploydev.js';

// Which buttons a state offers.
const ACTIONS = {
	running: ['stop', 'restart', 'pause', 'force-stop', 'console'],
	paused: ['resume', 'force-stop'],
	shutoff: ['start', 'delete'],
	crashed: ['start', 'force-stop', 'delete'],
	pmsuspended: ['force-stop'],
	'shutting-down': ['force-stop'],
	starting: ['force-stop'],
	unknown: ['force-stop'],
};
const LABEL = {
	start: 'Start', stop: 'Stop', restart: 'Restart', pause: 'Pause', resume: 'Resume',
	'force-stop': 'Force stop', delete: 'Delete…', console: 'Console',
};
// a classification badge's colour (vms.css)
const CLASS_CSS = { UNCLASSIFIED: 'u', CUI: 'cui', SECRET: 's', 'TOP SECRET': 'ts' };
// The VM JSON's "security" ({classification, tpm, secure_boot,
// disk_encrypted}) as a line under its name, or null when it has none.
function securityLine(s) {
	if (!s || typeof s !== 'object') return null;
	const cls = typeof s.classification === 'string' && s.classification ? s.classification : null;
	const has = [];
	if (s.tpm === true) has.push('TPM');
	if (s.secure_boot === true) has.push('Secure Boot');
	if (s.disk_encrypted === true) has.push('encrypted disk');
	if (!cls && !has.length) return null;
	return el('span', { class: 'gvm-sec-line', 'data-gvm': 'vm-security' },
		cls ? el('span', { class: `gvm-badge gvm-sec-badge gvm-sec-${CLASS_CSS[cls] || 'other'}`, 'data-gvm': 'vm-class' }, cls) : null,
		has.length ? el('span', { class: 'gvm-muted', 'data-gvm': 'vm-sec-has' }, has.join(' · ')) : null);
}
const PHASES = ['downloading', 'verifying', 'importing', 'resizing', 'seeding', 'defining', 'starting', 'done'];

export function mountVms(root, live) {
	const msg = el('div', { class: 'gvm-msg gvm-hidden', role: 'status', 'data-gvm': 'vm-msg' });
	const tbody = el('tbody', { 'data-gvm': 'vm-rows' },
		el('tr', {}, el('td', { colspan: 6, class: 'gvm-muted' }, 'loading…')));
	const hostInfo = el('span', { class: 'gvm-sub' });
	const table = el('table', { class: 'gvm-table' },
		el('thead', {}, el('tr', {}, ...['Name', 'State', 'RAM', 'vCPU', 'IP', ''].map((h) => el('th', {}, h)))),
		tbody);
	const jobs = el('div', { class: 'gvm-jobs', 'data-gvm': 'jobs' });
	const templates = el('div', { class: 'gvm-templates', 'data-gvm': 'templates' }, el('p', { class: 'gvm-muted' }, 'loading templates…'));
	const deployMsg = el('div', { class: 'gvm-msg gvm-hidden', role: 'status', 'data-gvm': 'deploy-msg' });

	// delete confirmation
	const delTitle = el('h3', {});
	const delDisk = el('input', { type: 'checkbox', 'data-gvm': 'remove-disk' });
	const delForce = el('input', { type: 'checkbox' });
	const delForceLabel = el('label', { class: 'gvm-check' }, delForce, ' It is running: force it off first');
	const delOk = el('button', { class: 'gvm-btn gvm-btn-danger gvm-btn-solid', type: 'button', 'data-gvm': 'confirm-delete' }, 'Delete');
	const delCancel = el('button', { class: 'gvm-btn', type: 'button' }, 'Cancel');
	const dlg = el('dialog', { class: 'gvm-dialog', 'data-gvm': 'delete-dialog' },
		delTitle,
		el('p', { class: 'gvm-muted' }, 'The VM definition is removed. Its disk stays unless you tick the box.'),
		el('label', { class: 'gvm-check' }, delDisk, ' Also remove its disk (cannot be undone)'),
		delForceLabel,
		el('div', { class: 'gvm-dialog-buttons' }, delCancel, delOk));
	let delVm = null;
	delCancel.addEventListener('click', () => dlg.close());
	delOk.addEventListener('click', async () => {
		const vm = delVm;
		dlg.close();
		if (!vm) return;
		const q = new URLSearchParams();
		if (delDisk.checked) q.set('remove_disk', 'true');
		if (delForce.checked) q.set('force', 'true');
		try {
			await api('DELETE', vmPath(vm.name) + (q.toString() ? '?' + q : ''));
			show(msg, `Deleted ${vm.name}${delDisk.checked ? ' and its disk' : ''}.`, 'ok');
			live.reload();
		} catch (e) {
			show(msg, `${vm.name}: ${e.message}`, 'error');
		}
	});

	root.replaceChildren(
		el('section', { class: 'gvm-card', id: 'vms' },
			el('h2', {}, 'Virtual machines', hostInfo), msg, table),
		el('section', { class: 'gvm-card', id: 'deploy' },
			el('h2', {}, 'Deploy', el('span', { class: 'gvm-sub' }, 'from a template')), deployMsg, jobs, templates),
		dlg);

	const busy = new Set();
	let host = null;

	function show(box, text, kind) {
		box.textContent = text;
		box.className = `gvm-msg gvm-msg-${kind}`;
	}

	async function act(vm, action) {
		if (action === 'delete') {
			delVm = vm;
			delTitle.textContent = `Delete “${vm.name}”?`;
			delDisk.checked = false;
			delForce.checked = false;
			delForceLabel.classList.toggle('gvm-hidden', vm.state === 'shutoff');
			dlg.showModal();
			return;
		}
		if (action === 'console') {
			try {
				const c = await api('GET', vmPath(vm.name, 'console'));
				await openConsole(vm.name, c && c.type === 'vnc' ? 'vnc' : 'serial');
			} catch (e) {
				show(msg, `${vm.name}: console: ${e.message}`, 'error');
			}
			return;
		}
		busy.add(vm.name);
		render(live.vms);
		try {
			const r = await api('POST', vmPath(vm.name, action), {});
			if (r && r.vm) live.put(r.vm);
			show(msg, `${vm.name}: ${r && r.message ? r.message : action + ' requested'}`, 'ok');
		} catch (e) {
			show(msg, `${vm.name}: ${e.message}`, 'error');
		} finally {
			busy.delete(vm.name);
			render(live.vms);
		}
	}

	// A row is a clone of a per-state prototype with the VM's strings set as
	// text (cheaper than building ~15 elements per VM); one click handler on
	// the table body finds the VM of a button by its row.
	const protos = new Map();
	const rowVm = new WeakMap();
	function proto(state) {
		let p = protos.get(state);
		if (p) return p;
		const acts = (ACTIONS[state] || ['force-stop']).map((a) => el('button', {
			class: 'gvm-btn' + (a === 'start' ? ' gvm-btn-primary' : '') + (a === 'delete' || a === 'force-stop' ? ' gvm-btn-danger' : ''),
			type: 'button', 'data-action': a,
		}, LABEL[a]));
		p = el('tr', {},
			el('td', {}, el('strong', { class: 'gvm-name' })),
			el('td', {}, el('span', { class: 'gvm-state' })),
			el('td', { class: 'gvm-num' }),
			el('td', { class: 'gvm-num' }),
			el('td', { class: 'gvm-num' }),
			el('td', {}, el('div', { class: 'gvm-actions' }, ...acts)));
		protos.set(state, p);
		return p;
	}

	function row(vm) {
		const tr = proto(vm.state).cloneNode(true);
		const [name, state, ram, cpus, ip, actions] = tr.children;
		tr.setAttribute('data-vm', vm.name);
		name.firstChild.textContent = vm.name;
		if (typeof vm.title === 'string' && vm.title) name.append(el('span', { class: 'gvm-title' }, vm.title));
		const sec = securityLine(vm.security);
		if (sec) name.append(sec);
		state.firstChild.className = `gvm-state gvm-state-${vm.state}`;
		state.firstChild.textContent = vm.state;
		ram.textContent = fmtMB(vm.memory_mb ?? vm.memory);
		cpus.textContent = String(vm.vcpus ?? '–');
		ip.textContent = vm.ip || '–';
		const acts = actions.firstChild;
		if (busy.has(vm.name)) for (const b of acts.children) b.disabled = true;
		if (vm.state === 'running' && vm.web_url && /^https?:\/\//.test(vm.web_url)) {
			acts.append(vm.web_ready === false
				? el('span', { class: 'gvm-muted gvm-small' }, 'preparing…')
				: el('a', { class: 'gvm-btn', href: vm.web_url, target: '_blank', rel: 'noopener noreferrer' }, 'Open Web UI'));
		}
		rowVm.set(tr, vm);
		return tr;
	}
	tbody.addEventListener('click', (ev) => {
		const b = ev.target.closest('button[data-action]');
		const vm = b && !b.disabled && rowVm.get(b.closest('tr'));
		if (vm) act(vm, b.dataset.action);
	});

	function render(vms) {
		if (!live.loaded) return; // "loading…" until the first list
		const all = [...vms.values()].sort((a, b) => a.name.localeCompare(b.name));
		tbody.replaceChildren(...(all.length ? all.map(row)
			: [el('tr', {}, el('td', { colspan: 6, class: 'gvm-muted' }, 'No virtual machines yet — deploy one below.'))]));
	}
	// the host and the templates once the list is on screen: they are
	// below it and should not delay it (one frame later)
	let later = false;
	live.subscribe((vms) => {
		render(vms);
		if (later || !live.loaded) return;
		later = true;
		requestAnimationFrame(() => setTimeout(loadTemplates, 0));
	});

	// ---- jobs
	const jobEls = new Map();
	function jobView(job) {
		let v = jobEls.get(job.id);
		if (!v) {
			v = { head: el('span', {}), detail: el('span', { class: 'gvm-muted' }), bar: el('div', {}), err: el('div', { class: 'gvm-small' }) };
			v.box = el('div', { class: 'gvm-job', 'data-job': job.id },
				el('div', { class: 'gvm-job-head' }, v.head, v.detail),
				el('div', { class: 'gvm-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 }, v.bar),
				v.err);
			jobEls.set(job.id, v);
			jobs.prepend(v.box);
		}
		let pct = 0;
		if (job.state === 'succeeded' || job.phase === 'done') pct = 100;
		else if (job.phase === 'downloading' && job.bytes_total > 0) pct = Math.min(95, 90 * job.bytes_done / job.bytes_total);
		else if (PHASES.includes(job.phase)) pct = 90 + 10 * PHASES.indexOf(job.phase) / (PHASES.length - 1);
		v.box.className = `gvm-job gvm-job-${job.state}`;
		v.box.dataset.state = job.state || '';
		v.bar.parentNode.setAttribute('aria-valuenow', String(Math.round(pct)));
		v.bar.style.width = pct.toFixed(1) + '%';
		v.head.textContent = `${job.vm || '?'} (${job.template || '?'}) — ${(job.state === 'running' ? job.phase : job.state) || 'starting'}`;
		let d = '';
		if (job.phase === 'downloading' && job.bytes_total) {
			d = `${fmtBytes(job.bytes_done)} of ${fmtBytes(job.bytes_total)}`;
			if (job.rate_bps) d += ` · ${fmtBytes(job.rate_bps)}/s`;
			if (typeof job.eta_s === 'number') d += ` · ${job.eta_s} s left`;
		}
		if (job.state === 'succeeded' && job.pinned === false && job.sha256) d = `trusted on first use, SHA-256 ${job.sha256}`;
		v.detail.textContent = d;
		v.err.textContent = job.error ? String(job.error) : '';
		if (job.state === 'succeeded') live.reload();
		if (['succeeded', 'failed', 'cancelled'].includes(job.state) && deployMsg.textContent === `Deploying ${job.vm}…`)
			show(deployMsg, `${job.vm}: deploy ${job.state}`, job.state === 'succeeded' ? 'ok' : 'error');
	}
	live.onJob(jobView);
	// without the event stream, follow our jobs by polling them
	function followJob(id) {
		const t = setInterval(async () => {
			if (live.mode === 'sse') return;
			try {
				const j = await api('GET', '/api/jobs/' + encodeURIComponent(id));
				jobView(j);
				if (j.state !== 'queued' && j.state !== 'running') clearInterval(t);
			} catch (e) {
				clearInterval(t);
			}
		}, 2000);
	}

	// ---- templates
	function templateCard(t) {
		const name = el('input', { class: 'gvm-input', name: 'name', required: true, pattern: '[a-z0-9][a-z0-9\\-]{0,62}', value: t.id || '', 'aria-label': 'VM name' });
		const mem = el('input', { class: 'gvm-input', name: 'memory_mb', type: 'number', min: 64, step: 64, value: t.memory_mb || '' });
		const start = el('input', { type: 'checkbox', name: 'start', checked: true });
		const trust = el('input', { type: 'checkbox', name: 'trust_unpinned' });
		const fit = el('p', { class: 'gvm-small' });
		function updateFit() {
			const want = Number(mem.value) || t.memory_mb || 0;
			let ok = t.fits_ram !== false;
			if (host && typeof host.ram_budget_mb === 'number' && typeof host.ram_committed_mb === 'number') {
				const free = host.ram_budget_mb - host.ram_committed_mb;
				ok = want <= free;
				fit.textContent = ok ? `Fits: ${fmtMB(want)} of ${fmtMB(Math.max(free, 0))} free for VMs`
					: `Needs ${fmtMB(want)}, only ${fmtMB(Math.max(free, 0))} free for VMs — stop another VM or lower the RAM`;
			} else {
				fit.textContent = ok ? `Needs ${fmtMB(want)} RAM — fits` : `Needs ${fmtMB(want)} RAM — more than is free`;
			}
			fit.className = 'gvm-small ' + (ok ? 'gvm-fit-ok' : 'gvm-fit-no');
		}
		mem.addEventListener('input', updateFit);
		updateFit();
		const btn = el('button', { class: 'gvm-btn gvm-btn-primary', type: 'submit', disabled: t.available === false }, 'Deploy');
		// the sticks and PCI accelerators the template asks for
		const devs = t.available === false ? null : deviceChoices(t, live);
		// classification, TPM, Secure Boot, encryption (collapsed)
		const sec = t.available === false ? null : securityChoices(host, devs ? devs.pciPicked : null);
		const form = el('form', { class: 'gvm-form', 'data-template': t.id },
			el('label', {}, 'Name', name),
			el('label', {}, 'RAM (MB)', mem),
			el('label', { class: 'gvm-check' }, start, ' Start when ready'),
			t.pinned === false ? el('label', { class: 'gvm-check' }, trust, ' No checksum is published: trust the download on first use') : null,
			devs ? devs.node : null,
			sec ? sec.node : null,
			btn);
		// a PCI pick may clash with the classification
		if (sec && devs) devs.node.addEventListener('change', () => sec.update());
		form.addEventListener('submit', async (ev) => {
			ev.preventDefault();
			btn.disabled = true;
			const body = { template: t.id, name: name.value, start: start.checked };
			if (Number(mem.value)) body.memory_mb = Number(mem.value);
			if (t.pinned === false) body.trust_unpinned = trust.checked;
			const devices = devs ? devs.devices() : null;
			if (devices) body.devices = devices;
			// what vmmod would refuse is not sent
			const stop = sec ? sec.check() : null;
			if (stop) {
				sec.refuse(stop);
				show(deployMsg, `Cannot deploy ${body.name}: ${stop}`, 'error');
				btn.disabled = t.available === false;
				return;
			}
			if (sec) Object.assign(body, sec.fields());
			try {
				const job = await api('POST', '/api/vms/create', body);
				if (devs) devs.outcome(null);
				if (sec) sec.outcome(null);
				show(deployMsg, `Deploying ${body.name}…`, 'ok');
				if (job && job.id) { jobView(job); followJob(job.id); }
			} catch (e) {
				show(deployMsg, `Cannot deploy ${body.name}: ${e.message}`, 'error');
				if (devs) devs.outcome(e);
				if (sec) sec.outcome(e);
			} finally {
				btn.disabled = t.available === false;
			}
		});
		return el('div', { class: 'gvm-template' },
			el('h3', {}, t.name || t.id),
			el('p', { class: 'gvm-muted gvm-small' }, t.description || ''),
			el('p', { class: 'gvm-small' }, `${fmtMB(t.memory_mb)} RAM · ${t.vcpus ?? '?'} vCPU · ${t.disk_gb ?? '?'} GB disk`),
			fit,
			t.available === false ? el('p', { class: 'gvm-small gvm-fit-no' }, t.why_not || 'not available on this host') : null,
			form);
	}

	async function loadTemplates() {
		try {
			host = await api('GET', '/api/host');
			if (host && typeof host.ram_total_mb === 'number') {
				hostInfo.textContent = `host RAM ${fmtMB(host.ram_total_mb)} · committed to VMs ${fmtMB(host.ram_committed_mb)}` +
					(typeof host.ram_budget_mb === 'number' ? ` of ${fmtMB(host.ram_budget_mb)}` : '');
			}
		} catch (e) { host = null; }
		try {
			const r = await api('GET', '/api/vms/templates');
			const list = (r && r.templates) || [];
			templates.replaceChildren(...(list.length ? list.map(templateCard) : [el('p', { class: 'gvm-muted' }, 'No templates installed.')]));
		} catch (e) {
			templates.replaceChildren(el('div', { class: 'gvm-msg gvm-msg-error' }, `Templates: ${e.message}`));
		}
	}
}
