// The live view of all VMs (and jobs): one list fetch, then `event: vm` /
// `event: job` from /api/events.  When the stream cannot be had (Guardian's
// blueprint caps open streams and answers 429/503 past the cap, or a proxy
// breaks it) the list is polled every 2 s, and the stream is tried again
// now and then.  Subscribers get the whole Map of VMs on every change.
import { api } from './api.js';

const POLL_MS = 2000;
const SSE_RETRY_MS = 30000;

export function createLive() {
	const vms = new Map();
	const subs = new Set();
	const jobSubs = new Set();
	let mode = 'connecting'; // 'sse' | 'poll' | 'down'
	let es = null, pollTimer = null, retryTimer = null, loading = null;

	const emit = () => { for (const f of subs) f(vms, mode); };

	async function reload() {
		if (loading) return loading;
		loading = (async () => {
			try {
				const r = await api('GET', '/api/vms');
				vms.clear();
				for (const vm of (r && r.vms) || []) vms.set(vm.uuid || vm.name, vm);
				if (mode === 'down') mode = es ? 'sse' : 'poll';
			} catch (e) {
				if (e.status === 401) mode = 'down';
				else if (mode !== 'sse') mode = 'down';
			} finally {
				loading = null;
				emit();
			}
		})();
		return loading;
	}

	function onVm(ev) {
		let vm;
		try { vm = JSON.parse(ev.data); } catch (e) { return; }
		if (!vm || typeof vm.name !== 'string') return;
		const key = vm.uuid || vm.name;
		if (vm.deleted) vms.delete(key);
		else vms.set(key, vm);
		emit();
	}

	function onJob(ev) {
		let job;
		try { job = JSON.parse(ev.data); } catch (e) { return; }
		for (const f of jobSubs) f(job);
	}

	function startPolling() {
		if (mode !== 'down') mode = 'poll';
		emit();
		if (!pollTimer) pollTimer = setInterval(reload, POLL_MS);
	}

	function stopPolling() {
		clearInterval(pollTimer);
		pollTimer = null;
		clearTimeout(retryTimer);
	}

	function startStream() {
		if (typeof EventSource === 'undefined') { startPolling(); return; }
		if (es) es.close();
		es = new EventSource('/api/events');
		es.addEventListener('open', () => {
			stopPolling();
			mode = 'sse';
			reload(); // whatever happened while we were not listening
		});
		es.addEventListener('vm', onVm);
		es.addEventListener('job', onJob);
		es.addEventListener('resync', reload);
		es.addEventListener('error', () => {
			// CLOSED: the server refused the stream (non-200): poll instead.
			// CONNECTING: EventSource retries by itself; poll meanwhile.
			if (es && es.readyState === EventSource.CLOSED) {
				es.close();
				es = null;
				clearTimeout(retryTimer);
				retryTimer = setTimeout(startStream, SSE_RETRY_MS);
			}
			startPolling();
		});
	}

	reload();
	startStream();

	return {
		vms,
		get mode() { return mode; },
		subscribe(f) { subs.add(f); f(vms, mode); return () => subs.delete(f); },
		onJob(f) { jobSubs.add(f); return () => jobSubs.delete(f); },
		reload,
		// A state change answered with the VM: show it before the event comes.
		put(vm) { if (vm && vm.name) { vms.set(vm.uuid || vm.name, vm); emit(); } },
	};
}
