// Talks to the JSON API of API.md on the page's own origin: vmmod itself
// (standalone, session cookie) or Guardian's blueprint (Guardian's session).
// Every error becomes an Error whose message is the API's "error" text.

export class ApiError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

export async function api(method, path, body) {
	const opts = { method, credentials: 'same-origin', headers: {} };
	if (method !== 'GET') {
		// the blueprint and vmmod refuse state changes without JSON
		opts.headers['Content-Type'] = 'application/json';
		opts.body = JSON.stringify(body || {});
	}
	let resp;
	try {
		resp = await fetch(path, opts);
	} catch (e) {
		throw new ApiError(0, 'network', 'cannot reach the server');
	}
	if (resp.status === 401 && !path.startsWith('/api/login')) {
		window.dispatchEvent(new CustomEvent('gvm-unauthorized'));
	}
	if (resp.status === 204) return null;
	let data = null;
	try {
		data = await resp.json();
	} catch (e) {
		data = null;
	}
	if (!resp.ok) {
		let msg = data && typeof data.error === 'string' ? data.error : `HTTP ${resp.status}`;
		if (resp.status === 501) msg = 'not available in this vmmod yet';
		throw new ApiError(resp.status, data && data.code, msg);
	}
	return data;
}

export const vmPath = (name, action) =>
	'/api/vms/' + encodeURIComponent(name) + (action ? '/' + action : '');

// Small DOM builder: el('td', {class: 'x'}, 'text', child).  Strings become
// text nodes; nothing is ever parsed as HTML.
export function el(tag, attrs, ...kids) {
	const e = document.createElement(tag);
	for (const k in attrs) {
		const v = attrs[k];
		if (v === undefined || v === null || v === false) continue;
		if (k === 'class') e.className = v;
		else if (k === 'text') e.textContent = v;
		else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
		else e.setAttribute(k, v === true ? '' : String(v));
	}
	for (const k of kids) {
		if (k === null || k === undefined || k === false) continue;
		e.append(typeof k === 'string' || typeof k === 'number' ? document.createTextNode(String(k)) : k);
	}
	return e;
}

export function fmtMB(mb) {
	if (typeof mb !== 'number') return '–';
	return mb >= 1024 ? (mb / 1024).toFixed(mb % 1024 ? 1 : 0) + ' GB' : mb + ' MB';
}

export function fmtBytes(b) {
	if (typeof b !== 'number') return '?';
	const u = ['B', 'KB', 'MB', 'GB'];
	let i = 0;
	while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
	return b.toFixed(i ? 1 : 0) + ' ' + u[i];
}

// Opens a VM's console in its own window: a navigation to the absolute URL
// vmmod answers with a single-use ticket (Guardian's CSP allows navigations,
// not cross-origin connections).  The window is opened on the click itself
// so popup blockers let it through.
export async function openConsole(name, type) {
	const w = window.open('', '_blank');
	try {
		const r = await api('POST', vmPath(name, 'console'), { type });
		if (!r || typeof r.url !== 'string' || !/^https?:\/\//.test(r.url)) throw new Error('no console URL');
		if (w) { w.opener = null; w.location.href = r.url; } else window.location.href = r.url;
	} catch (e) {
		if (w) w.close();
		throw e;
	}
}
