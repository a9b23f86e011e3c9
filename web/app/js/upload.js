// Uploads with tus-js-client (the tus 1.0.0 protocol, see internal/tusupload):
// drag and drop anywhere on the library, or the file picker; a progress bar
// per file; resumable: tus-js-client keeps each upload's URL in
// localStorage under the file's fingerprint (name, type, size, date,
// endpoint), so that after a reload or a dropped connection the same file
// dropped again goes on where it stopped. Several files dropped together
// may be sent as the chapters of one recording (tus metadata group,
// chapter, chapters): the server ingests them as one asset when the last
// one is complete.

import { session, paths, errorFrom, explain, ApiError } from './api.js';
import { h, replace, formatSize, formatDate } from './ui.js';

const GROUP_PREFIX = 'jitstream.group.';

/** The upload manager of the signed-in user: it outlives the library view, so that uploads go on while a recording plays. */
let manager = null;

/**
 * mountUploads puts the upload area in section and makes the whole page a
 * drop target while the library is shown. onAsset(id) is called when an
 * upload made an asset. It returns the teardown, which leaves the uploads
 * running.
 */
export function mountUploads(section, { onAsset }) {
  if (!manager || manager.user !== session.user || manager.token !== session.token) {
    stopUploads();
    manager = createManager();
  }
  manager.onAsset = onAsset;
  replace(section, manager.el);
  return manager.attach();
}

/** stopUploads pauses every upload (they resume when the file is dropped again) and forgets the manager. */
export function stopUploads() {
  if (manager) manager.stop();
  manager = null;
}

function createManager() {
  const m = { user: session.user, token: session.token, onAsset: null };
  const canUpload = !!session.token || !session.auth;
  const input = h('input', {
    type: 'file', id: 'file-input', multiple: true, class: 'visually-hidden',
    accept: 'video/*,.mp4,.m4v,.mov',
    onchange: () => { if (input.files.length) take([...input.files]); input.value = ''; },
  });
  const list = h('ul', { class: 'upload-list', id: 'upload-list' });
  const pending = h('div', { class: 'pending', id: 'pending' });
  const choice = h('div', { class: 'choice', id: 'upload-choice', hidden: true });
  const zone = h('div', { class: 'dropzone', id: 'dropzone' },
    h('p', null, h('strong', null, 'Drop video files here'), ' or ',
      h('label', { for: 'file-input', class: 'button' }, 'choose files'), input),
    h('p', { class: 'hint' }, 'Uploads resume where they stopped: after a reload, drop the same file again. ' +
      'Several files of one camera recording can become one recording.'));
  const active = new Set(); // uploads under way
  m.stop = () => { for (const u of active) u.abort(); active.clear(); };

  if (!canUpload) {
    m.el = h('div', { class: 'dropzone disabled' },
      h('p', null, 'To upload, sign out and sign in with your token: this browser was signed in by a link that does not keep the token.'));
    m.attach = () => () => {};
    return m;
  }
  const clearDone = h('button', {
    type: 'button', class: 'ghost small', id: 'clear-finished', hidden: true,
    onclick: () => {
      for (const r of list.querySelectorAll('.upload')) {
        if (['done', 'error', 'cancelled'].includes(r.dataset.state)) r.remove();
      }
      clearDone.hidden = true;
    },
  }, 'Clear finished');
  m.el = h('div', { class: 'uploads-inner' }, zone, choice, pending, list, clearDone);

  // The whole page takes drops while the library is shown.
  let depth = 0;
  const hasFiles = e => e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  const onEnter = e => { if (hasFiles(e)) { depth++; zone.classList.add('over'); e.preventDefault(); } };
  const onLeave = () => { if (--depth <= 0) { depth = 0; zone.classList.remove('over'); } };
  const onOver = e => { if (hasFiles(e)) { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; } };
  const onDrop = e => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove('over');
    const files = [...e.dataTransfer.files].filter(f => f.size > 0);
    if (files.length) take(files);
  };
  m.attach = () => {
    document.addEventListener('dragenter', onEnter);
    document.addEventListener('dragleave', onLeave);
    document.addEventListener('dragover', onOver);
    document.addEventListener('drop', onDrop);
    refreshPending();
    return () => {
      document.removeEventListener('dragenter', onEnter);
      document.removeEventListener('dragleave', onLeave);
      document.removeEventListener('dragover', onOver);
      document.removeEventListener('drop', onDrop);
      m.onAsset = null;
    };
  };

  /** take starts the files, or asks how to send several. */
  function take(files) {
    if (files.length === 1) {
      start(files, null);
      return;
    }
    files.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    const title = h('input', { type: 'text', id: 'group-title', placeholder: 'Title (optional)', 'aria-label': 'Title of the recording' });
    replace(choice,
      h('p', null, h('strong', null, `${files.length} files`), ': ', files.map(f => f.name).join(', ')),
      h('div', { class: 'row' },
        title,
        h('button', { type: 'button', class: 'primary', id: 'as-one', onclick: () => { choice.hidden = true; start(files, title.value.trim()); } },
          'Upload as one recording'),
        h('button', { type: 'button', id: 'as-separate', onclick: () => { choice.hidden = true; for (const f of files) start([f], null); } },
          `Upload as ${files.length} recordings`),
        h('button', { type: 'button', class: 'ghost', onclick: () => { choice.hidden = true; } }, 'Cancel')),
      h('p', { class: 'hint' }, 'As one recording, the files are its chapters, in this order (by name).'));
    choice.hidden = false;
  }

  /**
   * start uploads files: one recording made of them when groupTitle is
   * not null (chapters in order), else one recording of the single file.
   */
  function start(files, groupTitle) {
    let group = null;
    if (groupTitle !== null && files.length > 1) {
      // The same files dropped again (to resume) reuse the group they
      // were started with.
      const key = GROUP_PREFIX + files.map(f => `${f.name}/${f.size}/${f.lastModified}`).join('|');
      group = localStorage.getItem(key);
      if (!group) {
        group = 'web' + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
        localStorage.setItem(key, group);
      }
      group = { id: group, key, rows: [] };
    }
    files.forEach((file, i) => {
      const meta = { filename: file.name };
      if (file.type) meta.filetype = file.type;
      if (group) {
        Object.assign(meta, { group: group.id, chapter: String(i + 1), chapters: String(files.length) });
        if (groupTitle) meta.title = groupTitle;
      }
      send(file, meta, group);
    });
    refreshPending();
  }

  /** send uploads one file with tus, with its row in the list. */
  function send(file, metadata, group) {
    const bar = h('progress', { max: 100, value: 0 });
    const pct = h('span', { class: 'pct' }, '0 %');
    const status = h('span', { class: 'status' }, 'Starting…');
    const pause = h('button', { type: 'button', class: 'ghost small' }, 'Pause');
    const cancel = h('button', { type: 'button', class: 'ghost small' }, 'Cancel');
    const row = h('li', { class: 'upload', dataset: { name: file.name } },
      h('div', { class: 'upload-head' },
        h('span', { class: 'name' }, file.name),
        h('span', { class: 'size' }, formatSize(file.size)),
        group ? h('span', { class: 'chapter' }, `chapter ${metadata.chapter} of ${metadata.chapters}`) : null),
      h('div', { class: 'upload-bar' }, bar, pct),
      h('div', { class: 'upload-foot' }, status, h('span', { class: 'actions' }, pause, cancel)));
    list.prepend(row);

    let ingest = null; // Jitstream-Ingest-Status and -Asset of the last answer
    let paused = false;
    const setStatus = (text, kind = '') => {
      status.textContent = text;
      row.dataset.state = kind;
      if (['done', 'error', 'cancelled'].includes(kind)) clearDone.hidden = false;
    };
    const setProgress = p => {
      bar.value = p;
      pct.textContent = `${Math.floor(p)} %`;
      row.dataset.progress = String(Math.floor(p));
    };
    const done = () => { active.delete(upload); pause.hidden = true; cancel.hidden = true; };
    if (group) group.rows.push({ row, setStatus });

    const upload = new tus.Upload(file, {
      endpoint: location.origin + paths.uploads(session.user),
      headers: session.token ? { Authorization: `Bearer ${session.token}` } : {},
      metadata,
      chunkSize: 16 << 20,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      onProgress(sent, total) {
        setProgress(total ? (sent / total) * 100 : 100);
        setStatus(sent === total ? 'Processing on the server…' : `Uploading · ${formatSize(sent)} of ${formatSize(total)}`, 'uploading');
      },
      onAfterResponse(_req, res) {
        const st = res.getHeader('Jitstream-Ingest-Status');
        if (st) ingest = { status: Number(st), asset: res.getHeader('Jitstream-Asset') || '' };
      },
      onError(err) {
        done();
        const res = err && err.originalResponse;
        let e;
        if (res && res.getStatus()) {
          let j = {};
          try { j = JSON.parse(res.getBody() || '{}'); } catch { /* not JSON */ }
          e = new ApiError(res.getStatus(), j.error || `HTTP ${res.getStatus()}`, j.detail || '');
        } else {
          e = new ApiError(0, 'network error', err && err.message);
        }
        const [msg, detail] = explain(e, 'The upload');
        setStatus(`${msg} ${detail ? '(' + detail + ')' : ''}`, 'error');
        refreshPending();
      },
      onSuccess() {
        setProgress(100);
        finish().catch(e => {
          const [msg, detail] = explain(e, 'The upload');
          setStatus(`${msg} ${detail ? '(' + detail + ')' : ''}`, 'error');
        }).finally(() => { done(); refreshPending(); });
      },
    });
    active.add(upload);

    /** finish reports the ingest of a complete upload. */
    async function finish() {
      if (!ingest) {
        // A resumed upload the server already had whole: its result.
        ingest = await result(upload.url);
      }
      if (ingest.status === 202) {
        setStatus('Uploaded: waiting for the other chapters of the recording…', 'waiting');
        return;
      }
      if (ingest.status !== 200) {
        const r = await result(upload.url); // the error, in the server's words
        throw new ApiError(r.status, r.error || 'upload failed', r.detail || '');
      }
      if (group) {
        localStorage.removeItem(group.key);
        for (const r of group.rows) {
          if (r.row !== row && r.row.dataset.state === 'waiting') r.setStatus('Done: a chapter of the new recording', 'done');
        }
      }
      setStatus('Done', 'done');
      const a = h('a', { href: `#/watch/${encodeURIComponent(ingest.asset)}` }, 'Watch');
      status.append(' · ', a);
      if (m.onAsset) await m.onAsset(ingest.asset);
    }

    pause.addEventListener('click', () => {
      if (!paused) {
        upload.abort();
        paused = true;
        pause.textContent = 'Resume';
        setStatus('Paused', 'paused');
      } else {
        paused = false;
        pause.textContent = 'Pause';
        setStatus('Resuming…', 'uploading');
        upload.start();
      }
    });
    cancel.addEventListener('click', async () => {
      done();
      setStatus('Cancelled', 'cancelled');
      try { await upload.abort(true); } catch { /* the server forgets it when it expires */ }
      refreshPending();
    });

    upload.findPreviousUploads().then(prev => {
      if (prev.length) {
        upload.resumeFromPreviousUpload(prev[0]);
        setStatus('Resuming…', 'uploading');
      }
      upload.start();
    });
  }

  /** result asks the server for the result of a complete upload. */
  async function result(url) {
    const path = new URL(url, location.href).pathname + '/result';
    let res;
    try {
      res = await fetch(path, { headers: session.token ? { Authorization: `Bearer ${session.token}` } : {}, cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'network error', e.message);
    }
    if (res.status === 200) {
      const a = await res.json();
      return { status: 200, asset: a.id };
    }
    if (res.status === 202) return { status: 202 };
    const e = await errorFrom(res);
    return { status: e.status, error: e.error, detail: e.detail };
  }

  /**
   * refreshPending lists the unfinished uploads this browser remembers
   * (from a previous visit), with a way to drop them.
   */
  async function refreshPending() {
    let all = [];
    try { all = await tus.defaultOptions.urlStorage.findAllUploads(); } catch { /* no storage */ }
    const mine = all.filter(u => u.uploadUrl && new URL(u.uploadUrl, location.href).pathname.startsWith(paths.uploads(session.user)));
    const running = new Set([...active].map(u => u.url).filter(Boolean));
    const stale = mine.filter(u => !running.has(u.uploadUrl));
    if (!stale.length) {
      replace(pending);
      return;
    }
    replace(pending,
      h('p', null, h('strong', null, 'Unfinished uploads'), ' — drop the same file again to resume:'),
      h('ul', null, stale.map(u => h('li', null,
        h('span', { class: 'name' }, (u.metadata && u.metadata.filename) || 'file'), ' ',
        h('span', { class: 'size' }, formatSize(u.size)), ' ',
        h('span', { class: 'when' }, u.creationTime ? `started ${formatDate(u.creationTime)}` : ''), ' ',
        h('button', {
          type: 'button', class: 'ghost small',
          onclick: async () => {
            try {
              await tus.Upload.terminate(u.uploadUrl, { headers: session.token ? { Authorization: `Bearer ${session.token}` } : {} });
            } catch { /* gone already, or expired later by the server */ }
            await tus.defaultOptions.urlStorage.removeUpload(u.urlStorageKey);
            refreshPending();
          },
        }, 'Discard')))));
  }
  return m;
}
