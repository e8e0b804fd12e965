// Entry of the VM page inside Guardian (/vms, served by the blueprint): the
// VM list and the USB devices panel, as on vmmod's own page.
import { createLive } from './live.js';
import { mountUsb } from './usb.js';
import { mountVms } from './vms.js';

const live = createLive();
mountVms(document.getElementById('gvm-vms'), live);
const usb = document.createElement('div');
usb.className = 'gvm-main-usb';
document.getElementById('gvm-vms').after(usb);
mountUsb(usb, live);
