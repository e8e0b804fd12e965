// Entry of the tile inside Guardian's dashboard (guardian/templates/vms/
// tile.html): calls go to Guardian's own origin, through the blueprint.
import { createLive } from './live.js';
import { mountTile } from './tile.js';

const slot = document.getElementById('gvm-tile');
if (slot) mountTile(slot, createLive(), { pageUrl: slot.dataset.page || '/vms' });
