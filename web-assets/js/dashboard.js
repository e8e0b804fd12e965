// vmmod's own dashboard page (standalone and `make demo`): the tile and the
// VM page on one screen.  Losing the session sends the browser to /login.
import { api } from './api.js';
import { createLive } from './live.js';
import { mountTile } from './tile.js';
import { mountUsb } from './usb.js';
import { mountVms } from './vms.js';

window.addEventListener('gvm-unauthorized', () => { window.location.assign('/login'); });

const live = createLive();
mountTile(document.getElementById('gvm-tile'), live, { pageUrl: '#vms' });
mountVms(document.getElementById('gvm-vms'), live);
const usb = document.createElement('div');
usb.className = 'gvm-main-usb';
document.getElementById('gvm-vms').after(usb);
mountUsb(usb, live);

document.getElementById('gvm-logout').addEventListener('click', async () => {
	try { await api('POST', '/api/logout', {}); } catch (e) { /* gone anyway */ }
	window.location.assign('/login');
});
