// The console page, opened by a ticket at /console/{name}?type=serial|vnc
// (vmmod consumed the ticket and set a console cookie for this VM, so the
// websocket and a reconnect need nothing else).  Serial: xterm.js over the
// type-byte protocol of API.md ('0' input, '1' output, '2' resize JSON).
// VNC: noVNC speaking RFB over the websocket directly.
const params = new URLSearchParams(location.search);
const type = params.get('type') === 'vnc' ? 'vnc' : 'serial';
const name = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
const root = document.getElementById('gvm-console');
const status = document.getElementById('gvm-console-status');
document.getElementById('gvm-console-name').textContent = name;
document.title = `${name} — console`;

// drop the spent ticket from the address bar (reloads use the cookie)
if (params.has('ticket')) {
	params.delete('ticket');
	history.replaceState(null, '', location.pathname + '?' + params);
}

const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
	'/api/vms/' + encodeURIComponent(name) + '/console/' + type;

function setStatus(text, kind) {
	status.textContent = text;
	status.className = `gvm-live gvm-live-${kind}`;
}

let reconnect = () => {};
document.getElementById('gvm-console-reconnect').addEventListener('click', () => reconnect());

// xterm.js 5.5's DOM renderer writes its theme and cell sizes into <style>
// elements, which the page's CSP (style-src 'self') blocks.  Its <style>
// elements become constructed stylesheets here (not subject to style-src):
// an inert stand-in element whose textContent fills the sheet.
function constructedStyles() {
	const create = document.createElement.bind(document);
	document.createElement = (tag, opts) => {
		if (String(tag).toLowerCase() !== 'style') return create(tag, opts);
		const sheet = new CSSStyleSheet();
		document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
		const stand = create('template');
		let text = '';
		Object.defineProperty(stand, 'textContent', {
			get: () => text,
			set: (v) => { text = String(v); sheet.replaceSync(text); },
		});
		stand.remove = () => {
			document.adoptedStyleSheets = document.adoptedStyleSheets.filter((x) => x !== sheet);
			Element.prototype.remove.call(stand);
		};
		return stand;
	};
}

if (type === 'serial') {
	constructedStyles();
	const term = new window.Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
	term.open(root);
	const enc = new TextEncoder();
	let ws = null;
	const fit = () => {
		// one cell's size from the rendered terminal; no addon needed
		const cell = term._core?._renderService?.dimensions?.css?.cell;
		if (!cell || !cell.width) return;
		const cols = Math.max(20, Math.floor(root.clientWidth / cell.width));
		const rows = Math.max(5, Math.floor(root.clientHeight / cell.height));
		if (cols !== term.cols || rows !== term.rows) term.resize(cols, rows);
	};
	const send = (typeByte, bytes) => {
		if (!ws || ws.readyState !== WebSocket.OPEN) return;
		const buf = new Uint8Array(bytes.length + 1);
		buf[0] = typeByte.charCodeAt(0);
		buf.set(bytes, 1);
		ws.send(buf);
	};
	term.onData((d) => send('0', enc.encode(d)));
	term.onBinary((d) => send('0', Uint8Array.from(d, (c) => c.charCodeAt(0))));
	term.onResize(({ cols, rows }) => send('2', enc.encode(JSON.stringify({ cols, rows }))));
	window.addEventListener('resize', fit);
	reconnect = () => {
		if (ws) ws.close();
		setStatus('connecting…', 'poll');
		ws = new WebSocket(wsUrl);
		ws.binaryType = 'arraybuffer';
		ws.addEventListener('open', () => {
			setStatus('connected', 'sse');
			fit();
			send('2', enc.encode(JSON.stringify({ cols: term.cols, rows: term.rows })));
			term.focus();
		});
		ws.addEventListener('message', (ev) => {
			if (!(ev.data instanceof ArrayBuffer)) return;
			const b = new Uint8Array(ev.data);
			if (b.length > 0 && b[0] === 0x31) term.write(b.subarray(1));
		});
		ws.addEventListener('close', (ev) => {
			setStatus(`disconnected${ev.reason ? ': ' + ev.reason : ''}`, 'down');
		});
	};
	reconnect();
	window.gvmConsole = { term, get ws() { return ws; } }; // for tests
} else {
	document.getElementById('gvm-console-cad').classList.remove('gvm-hidden');
	const { default: RFB } = await import('../vendor/novnc/core/rfb.js');
	let rfb = null;
	const box = document.createElement('div');
	box.className = 'gvm-console-vnc';
	root.append(box);
	document.getElementById('gvm-console-cad').addEventListener('click', () => rfb && rfb.sendCtrlAltDel());
	reconnect = () => {
		if (rfb) rfb.disconnect();
		setStatus('connecting…', 'poll');
		rfb = new RFB(box, wsUrl, { wsProtocols: [] });
		rfb.scaleViewport = true;
		rfb.resizeSession = false;
		rfb.addEventListener('connect', () => setStatus('connected', 'sse'));
		rfb.addEventListener('disconnect', (e) => setStatus(e.detail.clean ? 'disconnected' : 'connection lost', 'down'));
		rfb.addEventListener('desktopname', (e) => { document.title = `${name} — ${e.detail.name}`; });
	};
	reconnect();
	window.gvmConsole = { get rfb() { return rfb; } }; // for tests
}
