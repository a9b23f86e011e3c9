// The server's API as the app uses it, the session (token, user), and the
// wording of every error the server can answer.
//
// Authentication: the token is kept in localStorage and sent as
// "Authorization: Bearer" with API requests. Media elements, images and
// download links cannot send that header: signing in therefore opens
// /api/v1/whoami?token=TOKEN once, and the server moves the token into its
// HttpOnly cookie (SameSite=Lax), which then authenticates every GET and
// HEAD of this origin (streams, thumbnails, files). The cookie never
// authenticates a POST, PATCH or DELETE: those always carry the header.

const TOKEN_KEY = 'jitstream.token';

/** ApiError is an error answer of the server (status 0: no answer). */
export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail ? `${error}: ${detail}` : error);
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

/** The current session: the token (null when the cookie or an open server is all there is), the user. */
export const session = { token: null, user: '', auth: true, users: [] };

export function storedToken() {
  try { return localStorage.getItem(TOKEN_KEY); } catch { return null; }
}

function storeToken(t) {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: the session lasts as long as the page */ }
}

/** errorFrom reads the JSON error of a failed response ({"error","detail"}). */
export async function errorFrom(res) {
  let error = res.statusText || `HTTP ${res.status}`, detail = '';
  try {
    const j = await res.json();
    if (j && typeof j === 'object') {
      error = j.error || error;
      detail = j.detail || j.status || '';
    }
  } catch { /* not JSON */ }
  return new ApiError(res.status, error, detail);
}

/**
 * request fetches path of this server with the session's token, and
 * returns the parsed JSON (null for 204), or throws an ApiError.
 */
export async function request(path, { method = 'GET', body, headers = {}, token = session.token } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined && typeof body !== 'string') {
    body = JSON.stringify(body);
    h['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(path, { method, body, headers: h, cache: 'no-store', credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'network error', e && e.message);
  }
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return null;
  const text = await res.text();
  try { return text ? JSON.parse(text) : null; } catch { throw new ApiError(res.status, 'bad answer', 'the server did not answer JSON'); }
}

/**
 * signIn checks a token and makes it the session's: GET
 * /api/v1/whoami?token= sets the media cookie (the server redirects to the
 * same URL without the token) and says whose token it is.
 */
export async function signIn(token) {
  token = token.trim();
  if (!token) throw new ApiError(401, 'unauthorized', 'no token given');
  const who = await request(`/api/v1/whoami?token=${encodeURIComponent(token)}`, { token: null });
  if (who.auth && !who.user) throw new ApiError(401, 'unauthorized', 'the server did not say whose token this is');
  Object.assign(session, { token: who.auth ? token : null, user: who.user || '', auth: !!who.auth, users: who.users || [] });
  storeToken(session.token);
  return who;
}

/**
 * resume restores the session when the page loads: the stored token, else
 * the cookie (a page opened with ?token=) or an open server. It returns
 * false when the person has to sign in, and throws the error that says why
 * when a stored token no longer works.
 */
export async function resume() {
  const t = storedToken();
  if (t) {
    try {
      await signIn(t);
      return true;
    } catch (e) {
      if (e.status === 401) storeToken(null);
      throw e;
    }
  }
  try {
    const who = await request('/api/v1/whoami', { token: null });
    Object.assign(session, { token: null, user: who.user || '', auth: !!who.auth, users: who.users || [] });
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

/** signOut forgets the token here and asks the server to expire its cookie. */
export async function signOut() {
  storeToken(null);
  Object.assign(session, { token: null, user: '' });
  try { await request('/api/v1/signout', { method: 'POST', token: null }); } catch { /* the token is gone anyway */ }
}

const enc = encodeURIComponent;

/** Paths of the user's resources (escaped). */
export const paths = {
  assets: u => `/api/v1/users/${enc(u)}/assets`,
  asset: (u, id) => `/api/v1/users/${enc(u)}/assets/${enc(id)}`,
  links: (u, id) => `/api/v1/users/${enc(u)}/assets/${enc(id)}/links`,
  uploads: u => `/api/v1/users/${enc(u)}/uploads/`,
  files: (u, id) => `/files/${enc(u)}/${enc(id)}/`,
  consolidated: (u, id) => `/files/${enc(u)}/${enc(id)}.mp4`,
  clip: (u, id, start, end) => `/files/${enc(u)}/${enc(id)}.mp4?start=${start}&end=${end}`,
  trick: (u, id, rate, pos) => `/files/${enc(u)}/${enc(id)}.mp4?rate=${rate}&pos=${pos}`,
  hls: (u, id) => `/streams/${enc(u)}/${enc(id)}/hls/master.m3u8`,
  thumb: (u, id, t) => `/streams/${enc(u)}/${enc(id)}/thumbs/${t}.jpg`,
  thumbsVTT: (u, id) => `/streams/${enc(u)}/${enc(id)}/thumbs/thumbnails.vtt`,
};

/**
 * explain words an error for people: [message, detail], where detail is
 * the server's own words. what names the thing asked for ("this
 * recording").
 */
export function explain(err, what = 'This') {
  if (!(err instanceof ApiError)) return ['Something went wrong in the app.', String(err && err.message || err)];
  const d = err.detail || '';
  const server = d ? `${err.error}: ${d}` : err.error;
  switch (err.status) {
    case 0:
      return ['The server cannot be reached. Check the connection and try again.', d];
    case 400:
      return [err.error === 'clip range outside the recording'
        ? 'The clip is outside the recording: set in and out points within it.'
        : 'The server did not accept the request.', server];
    case 401:
      return ['This token is not valid: it may be mistyped, revoked or expired. Ask for a new one (jitstream tokens create --user NAME).', server];
    case 403:
      return [err.error === 'link expired' ? 'This link has expired: ask for a new one.' : 'Access refused: this link does not grant it.', server];
    case 404:
      return [`${what} was not found: it may have been deleted, or belong to another user.`, server];
    case 409:
      return ['Conflict: this was already done or is under way.', server];
    case 413:
      return [err.error === 'over quota'
        ? 'This does not fit in your storage quota: delete recordings or ask for a larger quota.'
        : 'This file is larger than the server accepts.', server];
    case 415:
      return ['This file is not a kind of media jitstream stores (MP4 or QuickTime video).', server];
    case 422:
      return ['This file could not be read as a video: it may be damaged or incomplete.', server];
    case 429:
    case 503:
      return ['The server is busy: try again in a moment.', server];
    default:
      if (err.status >= 500) return [`The server had a problem (${err.status}). Try again; if it persists, tell its administrator.`, server];
      return [`The server answered ${err.status}.`, server];
  }
}
