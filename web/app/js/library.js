// The library view: the upload area and a grid of the user's recordings,
// each with a thumbnail, its title, date, duration and size, with a search
// (title or id) and a sort.

import { session, request, paths, explain } from './api.js';
import { h, replace, formatDate, formatDuration, formatSize, showAlert, escapeSelector } from './ui.js';
import { mountUploads } from './upload.js';

const SORT_KEY = 'jitstream.sort';

const sorts = {
  newest: { label: 'Newest first', cmp: (a, b) => time(b) - time(a) },
  oldest: { label: 'Oldest first', cmp: (a, b) => time(a) - time(b) },
  title: { label: 'Title A–Z', cmp: (a, b) => title(a).localeCompare(title(b), undefined, { numeric: true, sensitivity: 'base' }) },
  longest: { label: 'Longest first', cmp: (a, b) => (b.duration || 0) - (a.duration || 0) },
  shortest: { label: 'Shortest first', cmp: (a, b) => (a.duration || 0) - (b.duration || 0) },
  largest: { label: 'Largest first', cmp: (a, b) => (b.size || 0) - (a.size || 0) },
};

const time = a => Date.parse(a.created || a.ingested) || 0;
const title = a => a.title || a.id;

/** thumbTime is the time of an asset's grid picture: a quarter in, at most 30 s. */
export function thumbTime(duration) {
  if (!(duration > 1)) return '0';
  return String(Math.round(Math.min(duration / 4, 30) * 10) / 10);
}

/**
 * renderLibrary shows the library in main and returns its teardown.
 */
export async function renderLibrary(main) {
  document.title = `${session.user} · jitstream`;
  let assets = [];
  let sort = localStorage.getItem(SORT_KEY) || 'newest';
  if (!sorts[sort]) sort = 'newest';

  const search = h('input', {
    type: 'search', id: 'search', placeholder: 'Search titles and ids', 'aria-label': 'Search recordings',
    oninput: () => draw(),
  });
  const sortSelect = h('select', {
    id: 'sort', 'aria-label': 'Sort recordings',
    onchange: () => { sort = sortSelect.value; localStorage.setItem(SORT_KEY, sort); draw(); },
  }, Object.entries(sorts).map(([k, s]) => h('option', { value: k, selected: k === sort }, s.label)));
  const count = h('span', { class: 'count', id: 'count' });
  const grid = h('ul', { class: 'grid', id: 'grid', 'aria-live': 'polite' });
  const uploads = h('section', { class: 'uploads', id: 'uploads', 'aria-label': 'Uploads' });

  replace(main,
    h('div', { class: 'library' },
      uploads,
      h('div', { class: 'toolbar' },
        h('h1', null, 'Recordings'), count,
        h('div', { class: 'filters' }, search, sortSelect)),
      grid));

  function draw() {
    const q = search.value.trim().toLowerCase();
    const shown = assets
      .filter(a => !q || title(a).toLowerCase().includes(q) || a.id.toLowerCase().includes(q))
      .sort(sorts[sort].cmp);
    count.textContent = q ? `${shown.length} of ${assets.length}` : `${assets.length}`;
    if (!assets.length) {
      replace(grid, h('li', { class: 'empty' }, 'No recordings yet: drop video files above to upload them.'));
      return;
    }
    if (!shown.length) {
      replace(grid, h('li', { class: 'empty' }, `Nothing matches “${search.value.trim()}”.`));
      return;
    }
    replace(grid, shown.map(card));
  }

  async function load() {
    try {
      const r = await request(paths.assets(session.user));
      assets = (r && r.assets) || [];
      draw();
    } catch (err) {
      const [msg, detail] = explain(err, 'Your library');
      showAlert(msg, { detail });
      replace(grid, h('li', { class: 'empty error' }, msg));
    }
  }

  const unmount = mountUploads(uploads, {
    // A new asset: reload the list, and flash its card.
    onAsset: async id => {
      await load();
      const el = grid.querySelector(`[data-id="${escapeSelector(id)}"]`);
      if (el) el.classList.add('new');
    },
  });

  await load();
  return unmount;
}

/** card is the grid item of an asset. */
function card(a) {
  const img = h('img', {
    src: paths.thumb(a.user || session.user, a.id, thumbTime(a.duration)),
    alt: '', loading: 'lazy', decoding: 'async', width: 320, height: 180,
    onerror: () => { img.hidden = true; thumb.classList.add('placeholder'); },
  });
  const thumb = h('div', { class: 'thumb' }, img, h('span', { class: 'badge duration' }, formatDuration(a.duration)));
  const chapters = (a.chapters || []).length;
  return h('li', { class: 'item', dataset: { id: a.id } },
    h('a', { class: 'card', href: `#/watch/${encodeURIComponent(a.id)}`, title: title(a) },
      thumb,
      h('div', { class: 'meta' },
        h('h2', { class: 'title' }, title(a)),
        h('p', { class: 'sub' },
          h('time', { datetime: a.created || '' }, formatDate(a.created || a.ingested)),
          h('span', null, formatSize(a.size)),
          chapters > 1 ? h('span', null, `${chapters} chapters`) : null))));
}
