// The live view of all VMs (and jobs): one list fetch, then `event: vm` /
// `event: job` from /api/events.  When the stream cannot be had (Guardian's
// blueprint caps open streams and answers 429/503 past the cap, or a proxy
// breaks it) the list is polled every 2 s, and the stream is tried again
// now and then.  Subscribers get the whole Map of VMs on every change.
// index.html preloads /api/vms, so the first list is usually in by the time
// the modules run.
import { api } from './api.js';

const POLL_MS = 2000;
const SSE_RETRY_MS = 30000;

export function createLive() {
	const vms = new Map();
	const subs = new Set();
	const jobSubs = new Set();
	let mode = 'connecting'; // 'sse' | 'poll' | 'down'
	let es = null, pollTimer = null, retryTimer = null, loading = null;
	let loaded = false, leaving = false;
	// [mode, list] as JSON when the subscribers last got what a reload
	// fetched; null once anything else changed
	let shown = null;
	let vmEvents = 0; // how many vm events came (a list on its way may predate one)

	const emit = () => {
		shown = null;
		if (!leaving) for (const f of subs) f(vms, mode);
	};

	const reload = () => load(true);
	// again: fetch once more when a vm event came while the list was on its
	// way (the list, taken before it, has just undone it)
	async function load(again) {
		if (loading) return loading;
		loading = (async () => {
			let text = null;
			const events = vmEvents;
			try {
				const r = await api('GET', '/api/vms');
				const list = (r && r.vms) || [];
				if (mode === 'down') mode = es ? 'sse' : 'poll';
				text = JSON.stringify([mode, list]);
				if (text !== shown) {
					vms.clear();
					for (const vm of list) vms.set(vm.uuid || vm.name, vm);
				}
			} catch (e) {
				if (e.status === 401) mode = 'down';
				else if (mode !== 'sse') mode = 'down';
			} finally {
				loading = null;
				loaded = true;
				// the reload on every stream (re)open and poll mostly
				// brings the same list: no rebuild of every view then
				if (text === null || text !== shown) {
					emit();
					shown = text;
				}
				if (again && vmEvents !== events) load(false);
			}
		})();
		return loading;
	}

	function onVm(ev) {
		let vm;
		try { vm = JSON.parse(ev.data); } catch (e) { return; }
		if (!vm || typeof vm.name !== 'string') return;
		const key = vm.uuid || vm.name;
		vmEvents++;
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
			// whatever happened while we were not listening; a list still
			// on its way may predate the stream: fetch it again after
			if (loading) loading.then(reload);
			else reload();
		});
		es.addEventListener('vm', onVm);
		es.addEventListener('job', onJob);
		es.addEventListener('resync', reload);
		const src = es;
		// A task later: a page being left sees its stream fail while the
		// document goes (before pagehide), and then this timer never runs.
		src.addEventListener('error', () => setTimeout(() => {
			if (es !== src || leaving || src.readyState === EventSource.OPEN) return;
			// CLOSED: the server refused the stream (non-200): poll instead.
			// CONNECTING: EventSource retries by itself; poll meanwhile.
			if (src.readyState === EventSource.CLOSED) {
				src.close();
				es = null;
				clearTimeout(retryTimer);
				retryTimer = setTimeout(startStream, SSE_RETRY_MS);
			}
			startPolling();
		}, 0));
	}

	reload();
	startStream();
	// Leaving the page: no stream error, no re-render while the next page
	// loads; back from the back/forward cache: listen and load again.
	window.addEventListener('pagehide', () => {
		leaving = true;
		if (es) es.close();
		es = null;
		stopPolling();
	});
	window.addEventListener('pageshow', (ev) => {
		if (!ev.persisted) return;
		leaving = false;
		reload();
		startStream();
	});

	return {
		vms,
		get mode() { return mode; },
		get loaded() { return loaded; },
		subscribe(f) { subs.add(f); f(vms, mode); return () => subs.delete(f); },
		onJob(f) { jobSubs.add(f); return () => jobSubs.delete(f); },
		reload,
		// A state change answered with the VM: show it before the event comes.
		put(vm) { if (vm && vm.name) { vms.set(vm.uuid || vm.name, vm); emit(); } },
	};
}
