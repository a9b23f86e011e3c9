// The web app's entry: it restores the session, then shows the view of the
// address's fragment:
//
//   #/              the library (sign-in first when there is no session)
//   #/watch/{id}    the player of one recording
//
// Fragment routes need nothing from the server: /app/ serves the one page.

import { session, resume, signIn, signOut, explain, ApiError } from './api.js';
import { h, replace, showAlert, clearAlerts } from './ui.js';
import { renderLibrary } from './library.js';
import { stopUploads } from './upload.js';
import { renderPlayer } from './player.js';

const main = document.getElementById('main');
let teardown = null; // of the current view

/** route shows the view of location.hash. */
async function route() {
  if (teardown) {
    const t = teardown;
    teardown = null;
    try { t(); } catch (e) { console.error(e); }
  }
  document.body.classList.remove('watching');
  const hash = location.hash.replace(/^#/, '') || '/';
  if (!session.user) {
    renderSignIn();
    return;
  }
  updateAccount();
  const m = hash.match(/^\/watch\/([^/?#]+)$/);
  if (m) {
    document.body.classList.add('watching');
    teardown = await renderPlayer(main, decodeURIComponent(m[1]));
  } else {
    teardown = await renderLibrary(main);
  }
}

/** updateAccount shows who is signed in, and the sign-out button. */
function updateAccount() {
  const nav = document.getElementById('account');
  nav.hidden = !session.user;
  document.getElementById('who').textContent = session.user ? `${session.user}${session.auth ? '' : ' (open server)'}` : '';
  document.getElementById('signout').hidden = !session.auth;
}

/** renderSignIn shows the token form (and, on an open server, the libraries). */
function renderSignIn(message) {
  document.getElementById('account').hidden = true;
  document.title = 'Sign in · jitstream';
  if (!session.auth) {
    // An open server: anyone may pick a library.
    replace(main, h('section', { class: 'signin card-panel' },
      h('h1', null, 'Libraries on this server'),
      session.users.length
        ? h('ul', { class: 'users' }, session.users.map(u => h('li', null,
          h('button', { type: 'button', onclick: () => { session.user = u; route(); } }, u))))
        : h('p', null, 'No library yet: jitstream users add NAME, then upload.')));
    return;
  }
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'current-password', required: true,
    placeholder: 'jst_…', spellcheck: false, 'aria-describedby': 'signin-help',
  });
  const error = h('p', { class: 'form-error', id: 'signin-error', role: 'alert' });
  const button = h('button', { type: 'submit', class: 'primary', id: 'signin-submit' }, 'Sign in');
  const form = h('form', {
    class: 'signin card-panel', id: 'signin',
    onsubmit: async e => {
      e.preventDefault();
      button.disabled = true;
      error.textContent = '';
      try {
        await signIn(input.value);
        clearAlerts();
        await route();
      } catch (err) {
        const [msg, detail] = explain(err);
        replace(error, h('strong', null, msg), detail ? h('span', { class: 'detail' }, detail) : null);
        input.select();
      } finally {
        button.disabled = false;
      }
    },
  },
  h('h1', null, 'Sign in'),
  h('label', { for: 'token' }, 'Access token'),
  input,
  h('p', { class: 'hint', id: 'signin-help' },
    'Paste the token that ', h('code', null, 'jitstream tokens create --user NAME'), ' printed. ',
    'It is kept in this browser until you sign out.'),
  error,
  button);
  if (message) {
    const [msg, detail] = message;
    replace(error, h('strong', null, msg), detail ? h('span', { class: 'detail' }, detail) : null);
  }
  replace(main, form);
  input.focus();
}

document.getElementById('signout').addEventListener('click', async () => {
  stopUploads(); // paused: the same file dropped after signing in again resumes
  await signOut();
  location.hash = '#/';
  renderSignIn();
});

window.addEventListener('hashchange', async () => {
  if (!(await tokenFromHash())) return;
  route().catch(fail);
});

/**
 * tokenFromHash signs in with the token of an address /app/#token=TOKEN (a
 * fragment never reaches the server nor its logs), which leaves the
 * address bar at once. It returns false when that token is refused (the
 * sign-in form then says why).
 */
async function tokenFromHash() {
  const m = location.hash.match(/^#token=([^&]+)/);
  if (!m) return true;
  history.replaceState(null, '', location.pathname + location.search + '#/');
  try {
    await signIn(decodeURIComponent(m[1]));
    return true;
  } catch (err) {
    renderSignIn(explain(err));
    return false;
  }
}

function fail(err) {
  console.error(err);
  const [msg, detail] = explain(err);
  showAlert(msg, { detail });
}

async function boot() {
  if (!window.Hls || !window.tus) {
    showAlert('The player libraries did not load.', { detail: 'vendor scripts missing: reload the page' });
  }
  if (!(await tokenFromHash())) return;
  try {
    if (!session.user && !(await resume())) {
      renderSignIn();
      return;
    }
    if (!session.auth && !session.user && session.users.length === 1) session.user = session.users[0];
    if (!session.user) {
      renderSignIn();
      return;
    }
    await route();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      renderSignIn(explain(err));
      return;
    }
    fail(err);
    renderSignIn();
  }
}

boot();
