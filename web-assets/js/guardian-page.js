// Entry of the VM page inside Guardian (/vms, served by the blueprint).
import { createLive } from './live.js';
import { mountVms } from './vms.js';

mountVms(document.getElementById('gvm-vms'), createLive());
