// Token login for vmmod's own pages: POST /api/login sets the HttpOnly
// session cookie, then the dashboard opens.
import { api } from './api.js';

const form = document.getElementById('gvm-login');
const msg = document.getElementById('gvm-login-msg');
form.addEventListener('submit', async (ev) => {
	ev.preventDefault();
	msg.classList.add('gvm-hidden');
	try {
		await api('POST', '/api/login', { token: form.elements.token.value.trim() });
		window.location.assign('/');
	} catch (e) {
		msg.textContent = e.status === 401 || e.status === 403 ? 'Wrong token.' : e.message;
		msg.classList.remove('gvm-hidden');
	}
});
