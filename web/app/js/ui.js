// DOM and formatting helpers of the web app. Elements are built with h()
// (createElement and text nodes, never innerHTML), so that names and titles
// from the server are always text, and styles are set through the CSSOM,
// which the Content-Security-Policy allows (it forbids style attributes).

/**
 * h builds an element: h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child).
 * Attributes: class, dataset (object), hidden and boolean properties, on* listeners,
 * anything else through setAttribute. Children: strings, nodes, arrays, null (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else if (k in el && typeof el[k] !== 'function' && !k.includes('-') && k !== 'list' && k !== 'form') el[k] = v;
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** clear empties an element and appends children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** formatDuration: 75.3 -> "1:15", 3725 -> "1:02:05". */
export function formatDuration(s) {
  if (!isFinite(s) || s < 0) return '–:––';
  s = Math.floor(s);
  const hh = Math.floor(s / 3600), mm = Math.floor(s / 60) % 60, ss = s % 60;
  const two = n => String(n).padStart(2, '0');
  return hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

/** formatTime: like formatDuration with tenths, for in and out points ("1:15.3"). */
export function formatTime(s) {
  if (!isFinite(s) || s < 0) return '–';
  const tenths = Math.round(s * 10) % 10;
  return formatDuration(Math.floor(Math.round(s * 10) / 10)) + '.' + tenths;
}

/** formatSize: bytes in binary units, "1.4 GiB". */
export function formatSize(n) {
  if (!isFinite(n) || n < 0) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

/** formatDate: an RFC 3339 time in the browser's locale, '' if invalid. */
export function formatDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : dateFormat.format(d);
}

/**
 * Alerts: messages at the top of the page, one per distinct text. kind is
 * 'error' (stays until dismissed) or 'info' (goes after a few seconds).
 */
export function showAlert(message, { kind = 'error', detail = '' } = {}) {
  const box = document.getElementById('alerts');
  for (const old of box.children) {
    if (old.dataset.text === message + detail) return old;
  }
  const el = h('div', { class: `alert ${kind}`, dataset: { text: message + detail } },
    h('div', { class: 'alert-text' }, h('strong', null, message), detail ? h('span', { class: 'detail' }, detail) : null),
    h('button', { type: 'button', class: 'ghost close', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
  box.append(el);
  if (kind !== 'error') setTimeout(() => el.remove(), 5000);
  return el;
}

/** clearAlerts removes every alert. */
export function clearAlerts() {
  document.getElementById('alerts').replaceChildren();
}

/** escapeSelector is CSS.escape where it exists. */
export const escapeSelector = s => (window.CSS && CSS.escape ? CSS.escape(s) : s);

// Icons: inline SVG paths (24×24 view box), drawn in currentColor.
const ICONS = {
  play: 'M8 5v14l11-7z',
  pause: 'M6 5h4v14H6zm8 0h4v14h-4z',
  rewind: 'M11 18V6l-8.5 6zm.5-6 8.5 6V6z',
  forward: 'M4 18l8.5-6L4 6zm9-12v12l8.5-6z',
  volume: 'M3 9v6h4l5 5V4L7 9zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4zM14 3.2v2.1a7 7 0 0 1 0 13.4v2.1a9 9 0 0 0 0-17.6z',
  muted: 'M16.5 12A4.5 4.5 0 0 0 14 8v2.2l2.5 2.5zM19 12a7 7 0 0 1-.6 2.8l1.5 1.5A9 9 0 0 0 14 3.2v2.1A7 7 0 0 1 19 12zM4.3 3 3 4.3 7.7 9H3v6h4l5 5v-6.7l4.3 4.2a7 7 0 0 1-2.3 1.2v2.1a9 9 0 0 0 3.7-1.8l2 2 1.3-1.3-9-9zM12 4 9.9 6.1 12 8.2z',
  fullscreen: 'M7 14H5v5h5v-2H7zm-2-4h2V7h3V5H5zm12 7h-3v2h5v-5h-2zM14 5v2h3v3h2V5z',
};

/** icon is the SVG icon name (see ICONS), hidden from assistive technology. */
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '22');
  svg.setAttribute('height', '22');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('fill', 'currentColor');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', ICONS[name]);
  svg.append(p);
  return svg;
}
