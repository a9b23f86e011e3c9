// The player view of one recording: hls.js on the asset's HLS master
// playlist (the browser's own HLS where it has no Media Source
// Extensions), a quality menu of hls.js's levels (the original and the
// transcoded renditions) with Auto, scrubbing thumbnails from the WebVTT
// sprite track, fast forward and rewind through the trick-play streams,
// keyboard shortcuts, clip in and out points, downloads and share links.
//
// Media requests carry no Authorization header: the session's cookie
// (see api.js) authenticates them.
//
// Trick play: the server makes, for rate N (±2, ±4, ±8, ±16) and position
// pos, a keyframe-only stream, ID.mp4?rate=N&pos=SECONDS, that covers the
// content N times faster than real time, forward or backward from pos
// (internal/build/mp4/trickrate.go); its timeline starts at pos and runs
// at the normal pace. The player shows it in a second <video> over the
// paused main one, maps its playback time back to the content's, and when
// trick play stops, seeks the main video there and plays on. When the
// recording's key frames are too sparse, the server sends the ordinary
// clip from pos instead (with audio, its timeline from 0): the player
// then plays that N times faster (fast forward), or, for rewind, jumps
// back N × 10 s.

import { session, request, paths, explain, errorFrom, ApiError } from './api.js';
import { h, replace, icon, formatDuration, formatTime, formatSize, showAlert } from './ui.js';
import { parseThumbnails, cueAt } from './vtt.js';

const RATES = [2, 4, 8, 16];
const SEEK_STEP = 5;

/** renderPlayer shows the player of asset id in main and returns its teardown. */
export async function renderPlayer(main, id) {
  const user = session.user;
  replace(main, h('p', { class: 'loading' }, 'Loading…'));
  let asset;
  try {
    asset = await request(paths.asset(user, id));
  } catch (err) {
    const [msg, detail] = explain(err, 'This recording');
    replace(main, h('section', { class: 'card-panel notfound', id: 'player-error' },
      h('h1', null, 'Cannot play this recording'),
      h('p', { class: 'form-error' }, h('strong', null, msg), detail ? h('span', { class: 'detail' }, detail) : null),
      h('p', null, h('a', { href: '#/' }, '← Back to the library'))));
    return () => {};
  }
  const title = asset.title || asset.id;
  document.title = `${title} · jitstream`;
  const duration = asset.duration || 0;
  const hasVideo = (asset.tracks || []).some(t => t.kind === 'video');
  const disposers = [];
  const on = (target, type, fn, opts) => {
    target.addEventListener(type, fn, opts);
    disposers.push(() => target.removeEventListener(type, fn, opts));
  };

  // ---- elements ----------------------------------------------------------
  const video = h('video', { id: 'video', playsinline: true, preload: 'auto', autoplay: true });
  const trick = h('video', { id: 'trick', class: 'trick', playsinline: true, muted: true, preload: 'auto', hidden: true });
  const rateBadge = h('div', { class: 'rate-badge', id: 'rate-badge', hidden: true });
  const stageMsg = h('div', { class: 'stage-msg', hidden: true });

  const btn = (id, label, key, onclick, text) => h('button', {
    type: 'button', id, class: 'ctl', title: `${label} (${key})`, 'aria-label': label, onclick,
    onpointerdown: e => e.preventDefault(), // keep the focus (and the shortcuts) on the stage
  }, icon(text));
  const playBtn = btn('play', 'Play', 'space', () => togglePlay(), 'play');
  const rwBtn = btn('rewind', 'Rewind', 'J', () => trickStep(-1), 'rewind');
  const ffBtn = btn('forward', 'Fast forward', 'L', () => trickStep(1), 'forward');
  const muteBtn = btn('mute', 'Mute', 'M', () => { video.muted = !video.muted; }, 'volume');
  const fsBtn = btn('fullscreen', 'Full screen', 'F', () => toggleFullscreen(), 'fullscreen');
  const timeLabel = h('span', { class: 'time', id: 'time' }, `0:00 / ${formatDuration(duration)}`);
  const quality = h('select', { id: 'quality', class: 'quality', 'aria-label': 'Quality', title: 'Quality' },
    h('option', { value: '-1' }, 'Auto'));

  const buffered = h('div', { class: 'buffered' });
  const played = h('div', { class: 'played' });
  const clipRange = h('div', { class: 'clip-range', hidden: true });
  const handle = h('div', { class: 'handle' });
  const previewImg = h('div', { class: 'preview-img', id: 'preview-img' });
  const previewTime = h('span', { class: 'preview-time', id: 'preview-time' });
  const preview = h('div', { class: 'preview', id: 'preview', hidden: true }, previewImg, previewTime);
  const seek = h('div', {
    class: 'seek', id: 'seek', role: 'slider', tabindex: 0, 'aria-label': 'Position',
    'aria-valuemin': 0, 'aria-valuemax': Math.round(duration), 'aria-valuenow': 0,
  }, h('div', { class: 'track' }, buffered, clipRange, played, handle), preview);

  const controls = h('div', { class: 'controls' },
    seek,
    h('div', { class: 'buttons' },
      h('div', { class: 'group' }, rwBtn, playBtn, ffBtn, timeLabel),
      h('div', { class: 'group' }, muteBtn, quality, fsBtn)));
  const stage = h('div', { class: 'stage', id: 'stage', tabindex: -1 }, video, trick, rateBadge, stageMsg, controls);

  const inLabel = h('output', { id: 'in-point' }, '–');
  const outLabel = h('output', { id: 'out-point' }, '–');
  const clipLen = h('span', { class: 'clip-len', id: 'clip-length' });
  const clipLink = h('a', { id: 'clip-download', class: 'button primary disabled', 'aria-disabled': 'true' }, 'Download clip');
  const clipPanel = h('section', { class: 'panel clip', 'aria-label': 'Clip' },
    h('h2', null, 'Clip'),
    h('div', { class: 'row' },
      h('span', { class: 'point' },
        h('button', { type: 'button', id: 'set-in', title: 'Set the in point here (I)', onclick: () => setIn() }, 'Set in (I)'), inLabel),
      h('span', { class: 'point' },
        h('button', { type: 'button', id: 'set-out', title: 'Set the out point here (O)', onclick: () => setOut() }, 'Set out (O)'), outLabel),
      clipLen),
    h('div', { class: 'row' }, clipLink,
      h('button', { type: 'button', class: 'ghost', id: 'clip-clear', onclick: () => { st.in = st.out = null; drawClip(); } }, 'Clear')),
    h('p', { class: 'hint' }, 'The clip starts exactly at the in point and ends at the out point.'));

  const downloads = h('section', { class: 'panel downloads', id: 'downloads', 'aria-label': 'Downloads' },
    h('h2', null, 'Downloads'), h('p', { class: 'loading' }, 'Loading…'));

  const shareOut = h('div', { class: 'share-out', id: 'share-out' });
  const shareTTL = h('select', { id: 'share-ttl', 'aria-label': 'Link lifetime' },
    h('option', { value: 3600 }, '1 hour'), h('option', { value: 86400, selected: true }, '1 day'),
    h('option', { value: 7 * 86400 }, '7 days'), h('option', { value: 30 * 86400 }, '30 days'));
  const sharePanel = h('section', { class: 'panel share', 'aria-label': 'Share' },
    h('h2', null, 'Share'),
    session.token
      ? h('div', { class: 'row' }, shareTTL, h('button', { type: 'button', id: 'share', onclick: () => share() }, 'Make a link'))
      : h('p', { class: 'hint' }, session.auth ? 'Sign in with your token to make links.' : 'This server is open to everyone: share the address of this page.'),
    session.auth ? h('p', { class: 'hint' }, 'A link plays this recording (every format, and its files) for anyone who has it, until it expires.') : null,
    shareOut);

  const help = h('details', { class: 'panel help' },
    h('summary', null, 'Keyboard shortcuts'),
    h('dl', { class: 'keys' }, [
      ['Space / K', 'play or pause'], ['← / →', `back / forward ${SEEK_STEP} s`], ['J / L', 'rewind / fast forward (again: faster)'],
      ['F', 'full screen'], ['M', 'mute'], ['I / O', 'clip in / out point'], ['Esc', 'stop rewinding or fast forwarding'],
    ].map(([k, d]) => [h('dt', null, h('kbd', null, k)), h('dd', null, d)])));

  replace(main, h('div', { class: 'player-page' },
    h('div', { class: 'player-head' },
      h('a', { href: '#/', class: 'back' }, '← Library'),
      h('h1', { id: 'player-title' }, title)),
    stage,
    h('div', { class: 'panels' }, clipPanel, downloads, sharePanel, help)));

  // ---- state ---------------------------------------------------------------
  const st = {
    in: null, out: null,
    trick: null, // {rate, pos, base, fallback}
    dragging: false,
    cues: null,
    hoverT: null,
  };
  let hls = null;

  // ---- source ----------------------------------------------------------------
  const src = paths.hls(user, id);
  if (window.Hls && Hls.isSupported()) {
    hls = new Hls({ enableWorker: true, backBufferLength: 60, capLevelToPlayerSize: false });
    hls.on(Hls.Events.MANIFEST_PARSED, () => fillQuality());
    hls.on(Hls.Events.LEVEL_SWITCHED, () => drawQuality());
    let recovered = 0;
    hls.on(Hls.Events.ERROR, (_e, data) => {
      if (!data.fatal) return;
      const code = data.response && data.response.code;
      if (code === 401 || code === 403 || code === 404) {
        const [msg, detail] = explain(new ApiError(code, code === 404 ? 'not found' : 'unauthorized', `${data.details} ${data.url || ''}`), 'This stream');
        stageError(msg, detail);
        hls.destroy();
        hls = null;
        return;
      }
      if (recovered++ < 3) {
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
        else hls.startLoad();
        return;
      }
      stageError('The video stopped: the stream cannot be loaded.', `${data.type} ${data.details}`);
    });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = src; // the browser's own HLS (Safari, iOS): it picks the quality
    quality.hidden = true;
  } else {
    video.src = paths.consolidated(user, id); // no HLS at all: the progressive file
    quality.hidden = true;
  }
  // For tests and debugging: the player library of this view.
  window.__jitstreamPlayer = { get hls() { return hls; }, video, trick, state: st, position: () => now() };

  on(video, 'error', () => {
    if (!video.error) return;
    stageError('The video cannot be played in this browser.', `MediaError ${video.error.code}: ${video.error.message || ''}`);
  });
  on(video, 'play', drawButtons);
  on(video, 'pause', drawButtons);
  on(video, 'volumechange', drawButtons);
  video.play().catch(() => { /* autoplay refused: the play button is there */ });

  // ---- quality -------------------------------------------------------------
  function levelLabel(l) {
    // The renditions' playlists are {height}p/index.m3u8, the original's v1/.
    const original = !/\/\d+p\/[^/]+$/.test(new URL(l.uri || l.url[0] || '', location.href).pathname);
    return `${l.height ? l.height + 'p' : Math.round(l.bitrate / 1000) + ' kbit/s'}${original ? ' · original' : ''}`;
  }
  function fillQuality() {
    const levels = hls.levels.map((l, i) => ({ l, i })).sort((a, b) => (b.l.height - a.l.height) || (b.l.bitrate - a.l.bitrate));
    replace(quality, h('option', { value: '-1' }, 'Auto'), levels.map(({ l, i }) => h('option', { value: String(i), dataset: { height: l.height } }, levelLabel(l))));
    quality.hidden = levels.length < 2;
    drawQuality();
  }
  function drawQuality() {
    if (!hls) return;
    const auto = quality.querySelector('option[value="-1"]');
    const cur = hls.levels[hls.currentLevel];
    auto.textContent = hls.autoLevelEnabled && cur && cur.height ? `Auto (${cur.height}p)` : 'Auto';
    quality.value = hls.autoLevelEnabled ? '-1' : String(hls.currentLevel);
  }
  on(quality, 'change', () => {
    if (!hls) return;
    hls.currentLevel = Number(quality.value); // switches now (-1: automatic)
    drawQuality();
    stage.focus({ preventScroll: true });
  });

  // ---- playback ------------------------------------------------------------
  /** now is the position on the recording's timeline, trick play included. */
  function now() {
    if (!st.trick) return video.currentTime || 0;
    const t = st.trick;
    if (t.base == null) return t.pos;
    let c;
    if (t.fallback) c = t.pos + (trick.currentTime - t.base);
    else c = t.pos + Math.sign(t.rate) * Math.abs(t.rate) * (trick.currentTime - t.base);
    return Math.min(Math.max(c, 0), duration);
  }

  function togglePlay() {
    if (st.trick) {
      stopTrick(now(), true);
      return;
    }
    if (video.paused || video.ended) video.play().catch(e => showAlert('Playback did not start.', { detail: e.message }));
    else video.pause();
  }

  function seekTo(t) {
    t = Math.min(Math.max(t, 0), Math.max(duration - 0.05, 0));
    if (st.trick) {
      stopTrick(t, st.trick.resume);
      return;
    }
    video.currentTime = t;
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else if (stage.requestFullscreen) stage.requestFullscreen().catch(e => showAlert('Full screen was refused.', { kind: 'info', detail: e.message }));
  }

  function stageError(msg, detail) {
    replace(stageMsg, h('strong', null, msg), detail ? h('span', { class: 'detail' }, detail) : null);
    stageMsg.hidden = false;
    showAlert(msg, { detail });
  }

  // ---- trick play ----------------------------------------------------------
  /** trickStep speeds up in a direction: L (+1) and J (-1), 2×, 4×, 8×, 16×. */
  function trickStep(dir) {
    if (!hasVideo || !duration) return;
    const cur = st.trick ? st.trick.rate : 0;
    let rate;
    if (dir > 0) rate = cur > 0 ? RATES[Math.min(RATES.indexOf(cur) + 1, RATES.length - 1)] : RATES[0];
    else rate = cur < 0 ? -RATES[Math.min(RATES.indexOf(-cur) + 1, RATES.length - 1)] : -RATES[0];
    if (st.trick && rate === cur) return;
    const pos = now();
    if ((rate > 0 && pos >= duration - 0.5) || (rate < 0 && pos <= 0.05)) return; // nothing to cover
    startTrick(rate, pos);
  }

  function startTrick(rate, pos, resume) {
    const wasPlaying = resume ?? (st.trick ? st.trick.resume : !video.paused);
    video.pause();
    st.trick = { rate, pos, base: null, fallback: false, resume: wasPlaying };
    trick.playbackRate = 1;
    trick.src = paths.trick(user, id, rate, (Math.round(pos * 1000) / 1000).toFixed(3));
    trick.hidden = false;
    stage.classList.add('tricking');
    replace(rateBadge, icon(rate > 0 ? 'forward' : 'rewind'), ` ${Math.abs(rate)}×`);
    rateBadge.hidden = false;
    trick.play().catch(() => {});
    drawButtons();
  }

  on(trick, 'loadedmetadata', () => {
    // The trick stream's timeline starts at pos and lasts the content it
    // covers divided by |rate|; the ordinary clip sent instead (sparse key
    // frames) starts at 0 and lasts the content itself.
    const t = st.trick;
    if (!t || !isFinite(trick.duration)) return;
    const r = Math.abs(t.rate);
    const asTrick = t.pos + (t.rate > 0 ? (duration - t.pos) / r : t.pos / r);
    const asClip = t.rate > 0 ? duration - t.pos : duration - Math.max(0, t.pos - r * 10);
    t.fallback = Math.abs(trick.duration - asClip) < Math.abs(trick.duration - asTrick);
    if (t.fallback && t.rate < 0) {
      // Rewinding through a clip that plays forward makes no sense: try
      // the next rate, whose stream needs half the key frames; at the
      // last, jump back as far as the server would have gone.
      if (r < RATES[RATES.length - 1]) startTrick(t.rate * 2, t.pos, t.resume);
      else stopTrick(Math.max(0, t.pos - r * 10), t.resume);
    } else if (t.fallback) {
      trick.playbackRate = Math.min(r, 16);
    }
  });
  on(trick, 'playing', () => {
    const t = st.trick;
    if (!t || t.base != null) return;
    t.base = t.fallback ? 0 : Math.abs(trick.currentTime - t.pos) < 0.5 ? t.pos : trick.currentTime;
  });
  on(trick, 'ended', () => {
    if (st.trick) stopTrick(st.trick.rate > 0 ? Math.max(duration - 0.1, 0) : 0, st.trick.rate < 0 && st.trick.resume);
  });
  on(trick, 'error', () => {
    if (!st.trick) return;
    const pos = st.trick.pos;
    stopTrick(pos, st.trick.resume);
    // Ask again to tell why, in the server's words.
    fetch(paths.trick(user, id, 2, pos.toFixed(3)), { method: 'HEAD' }).then(async r => {
      const [msg, detail] = r.ok ? ['Fast forward is not available for this recording.', ''] : explain(await errorFrom(r), 'The trick-play stream');
      showAlert(msg, { detail });
    }).catch(() => {});
  });

  /** stopTrick leaves trick play at position t and goes on with the main video. */
  function stopTrick(t, play) {
    if (!st.trick) return;
    st.trick = null;
    trick.pause();
    trick.removeAttribute('src');
    trick.load();
    trick.hidden = true;
    rateBadge.hidden = true;
    stage.classList.remove('tricking');
    video.currentTime = Math.min(Math.max(t, 0), Math.max(duration - 0.05, 0));
    if (play) video.play().catch(() => {});
    drawButtons();
  }

  // ---- seek bar and thumbnails -----------------------------------------------
  const fracAt = e => {
    const r = seek.getBoundingClientRect();
    return Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
  };
  function showPreview(e) {
    const f = fracAt(e);
    const t = f * duration;
    st.hoverT = t;
    previewTime.textContent = formatDuration(t);
    const cue = st.cues && cueAt(st.cues, t);
    if (cue) {
      previewImg.hidden = false;
      previewImg.style.backgroundImage = `url("${cue.url}")`;
      if (cue.w) {
        previewImg.style.width = `${cue.w}px`;
        previewImg.style.height = `${cue.h}px`;
        previewImg.style.backgroundPosition = `-${cue.x}px -${cue.y}px`;
      }
      previewImg.dataset.url = cue.url;
      previewImg.dataset.xywh = `${cue.x},${cue.y},${cue.w},${cue.h}`;
    } else {
      previewImg.hidden = true;
    }
    preview.hidden = false;
    // Keep the preview within the bar.
    const bar = seek.getBoundingClientRect();
    const pw = preview.offsetWidth || 0;
    const x = Math.min(Math.max(f * bar.width - pw / 2, 0), Math.max(bar.width - pw, 0));
    preview.style.transform = `translateX(${x}px)`;
  }
  on(seek, 'pointermove', e => {
    showPreview(e);
    if (st.dragging) drawPosition(fracAt(e) * duration);
  });
  on(seek, 'pointerenter', showPreview);
  on(seek, 'pointerleave', () => { if (!st.dragging) { preview.hidden = true; st.hoverT = null; } });
  on(seek, 'pointerdown', e => {
    if (e.button !== 0) return;
    st.dragging = true;
    seek.setPointerCapture(e.pointerId);
    showPreview(e);
    drawPosition(fracAt(e) * duration);
    e.preventDefault();
  });
  const endDrag = e => {
    if (!st.dragging) return;
    st.dragging = false;
    seekTo(fracAt(e) * duration);
    if (e.type === 'pointercancel' || !seek.matches(':hover')) preview.hidden = true;
  };
  on(seek, 'pointerup', endDrag);
  on(seek, 'pointercancel', endDrag);
  on(seek, 'keydown', e => {
    if (e.key === 'Home') { seekTo(0); e.preventDefault(); }
    if (e.key === 'End') { seekTo(duration); e.preventDefault(); }
  });

  // The sprite track: without it (no transcoder on the server) the
  // preview shows the time only.
  (async () => {
    const url = paths.thumbsVTT(user, id);
    try {
      const res = await fetch(url, { credentials: 'same-origin' });
      if (!res.ok) return;
      st.cues = parseThumbnails(await res.text(), new URL(url, location.href));
      seek.dataset.thumbnails = String(st.cues.length);
      // Warm the first sheet, so that the first hover shows a picture.
      if (st.cues.length) new Image().src = st.cues[0].url;
    } catch (e) {
      console.warn('thumbnails:', e);
    }
  })();

  // ---- drawing ---------------------------------------------------------------
  function drawPosition(t) {
    const f = duration ? Math.min(t / duration, 1) : 0;
    played.style.width = `${f * 100}%`;
    handle.style.left = `${f * 100}%`;
    seek.setAttribute('aria-valuenow', String(Math.round(t)));
    seek.setAttribute('aria-valuetext', formatDuration(t));
    timeLabel.textContent = `${formatDuration(t)} / ${formatDuration(duration)}`;
  }
  function drawBuffered() {
    const b = video.buffered;
    const t = video.currentTime;
    let end = 0;
    for (let i = 0; i < b.length; i++) if (b.start(i) <= t + 0.5 && b.end(i) > end) end = b.end(i);
    buffered.style.width = `${duration ? Math.min(end / duration, 1) * 100 : 0}%`;
  }
  function drawButtons() {
    const playing = st.trick ? true : !video.paused && !video.ended;
    if (playBtn.dataset.icon !== (playing ? 'pause' : 'play')) {
      playBtn.dataset.icon = playing ? 'pause' : 'play';
      playBtn.replaceChildren(icon(playBtn.dataset.icon));
    }
    playBtn.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    stage.classList.toggle('paused', !playing);
    if (muteBtn.dataset.icon !== (video.muted ? 'muted' : 'volume')) {
      muteBtn.dataset.icon = video.muted ? 'muted' : 'volume';
      muteBtn.replaceChildren(icon(muteBtn.dataset.icon));
    }
    muteBtn.setAttribute('aria-label', video.muted ? 'Unmute' : 'Mute');
    rwBtn.classList.toggle('active', !!st.trick && st.trick.rate < 0);
    ffBtn.classList.toggle('active', !!st.trick && st.trick.rate > 0);
  }
  let raf = 0;
  const frame = () => {
    if (!st.dragging) drawPosition(now());
    drawBuffered();
    raf = requestAnimationFrame(frame);
  };
  raf = requestAnimationFrame(frame);
  drawButtons();

  // ---- clip ------------------------------------------------------------------
  const round3 = t => Math.round(t * 1000) / 1000;
  function setIn() {
    st.in = round3(now());
    if (st.out != null && st.out <= st.in) st.out = null;
    drawClip();
  }
  function setOut() {
    st.out = round3(now());
    if (st.in != null && st.in >= st.out) st.in = null;
    drawClip();
  }
  function clipBounds() {
    const a = st.in ?? 0, b = st.out ?? duration;
    return b - a > 0.05 && (st.in != null || st.out != null) ? [a, b] : null;
  }
  function drawClip() {
    inLabel.textContent = st.in == null ? '–' : formatTime(st.in);
    outLabel.textContent = st.out == null ? '–' : formatTime(st.out);
    const c = clipBounds();
    if (!c) {
      clipRange.hidden = true;
      clipLen.textContent = '';
      clipLink.classList.add('disabled');
      clipLink.setAttribute('aria-disabled', 'true');
      clipLink.removeAttribute('href');
      return;
    }
    const [a, b] = c;
    clipRange.hidden = false;
    clipRange.style.left = `${(a / duration) * 100}%`;
    clipRange.style.width = `${((b - a) / duration) * 100}%`;
    clipLen.textContent = `${formatTime(b - a)} long`;
    const start = String(round3(a)), end = st.out == null ? '' : String(round3(b));
    clipLink.href = end ? paths.clip(user, id, start, end) : `${paths.consolidated(user, id)}?start=${start}`;
    clipLink.download = `${id}_${start.replace('.', '_')}-${(end || 'end').replace('.', '_')}.mp4`;
    clipLink.classList.remove('disabled');
    clipLink.removeAttribute('aria-disabled');
  }
  on(clipLink, 'click', e => {
    if (!clipLink.href) e.preventDefault();
    else checkedDownload(e, clipLink, 'The clip');
  });
  drawClip();

  // ---- downloads ---------------------------------------------------------------
  (async () => {
    let files;
    try {
      const r = await request(paths.files(user, id));
      files = (r && r.files) || [];
    } catch (err) {
      const [msg, detail] = explain(err, 'The list of files');
      replace(downloads, h('h2', null, 'Downloads'), h('p', { class: 'form-error' }, msg, ' ', h('span', { class: 'detail' }, detail)));
      return;
    }
    const link = (f, label, note) => h('li', { dataset: { kind: f.kind } },
      h('a', {
        href: f.url, download: f.name.split('/').pop(), class: 'dl',
        onclick: e => checkedDownload(e, e.currentTarget, label),
      }, label),
      f.note
        ? h('span', { class: 'size', title: f.note }, note || 'being transcoded: downloads as it is made')
        : h('span', { class: 'size' }, formatSize(f.size)));
    const by = k => files.filter(f => f.kind === k);
    const rend = by('rendition').sort((a, b) => (parseInt(b.rendition) || 0) - (parseInt(a.rendition) || 0));
    const originals = by('original');
    replace(downloads,
      h('h2', null, 'Downloads'),
      h('ul', { class: 'files' },
        by('consolidated').map(f => link(f, `Whole recording (MP4)`)),
        by('fmp4').map(f => link(f, 'Whole recording (fragmented MP4)')),
        rend.map(f => link(f, `${f.rendition || 'Rendition'} (MP4)`))),
      originals.length
        ? [h('h3', null, originals.length > 1 ? `Original chapters (${originals.length})` : 'Original file'),
          h('ul', { class: 'files' }, originals.map(f => link(f, f.name.split('/').pop())))]
        : null);
  })();

  /**
   * checkedDownload lets a download link go after a HEAD request says the
   * file is there; otherwise it shows the server's error instead of
   * saving an error page as a file.
   */
  async function checkedDownload(e, a, what) {
    if (a.dataset.checked === a.href) {
      delete a.dataset.checked;
      return; // the second, programmatic click
    }
    e.preventDefault();
    let res;
    try {
      res = await fetch(a.href, { method: 'HEAD', credentials: 'same-origin' });
    } catch (err) {
      const [msg, detail] = explain(new ApiError(0, 'network error', err.message), what);
      showAlert(msg, { detail });
      return;
    }
    if (!res.ok) {
      // HEAD has no body: ask for the error with a GET of one byte.
      const g = await fetch(a.href, { headers: { Range: 'bytes=0-0' }, credentials: 'same-origin' }).catch(() => null);
      const err = g && !g.ok ? await errorFrom(g) : new ApiError(res.status, res.statusText || 'error', '');
      const [msg, detail] = explain(err, what);
      showAlert(msg, { detail });
      return;
    }
    a.dataset.checked = a.href;
    a.click();
  }

  // ---- share -------------------------------------------------------------------
  async function share() {
    try {
      const r = await request(paths.links(user, id), { method: 'POST', body: { expires_in: Number(shareTTL.value) } });
      const url = new URL(r.url, location.href).href;
      const field = h('input', { type: 'text', readOnly: true, value: url, id: 'share-url', 'aria-label': 'Link' });
      const copy = h('button', {
        type: 'button', onclick: async () => {
          field.select();
          try { await navigator.clipboard.writeText(url); showAlert('Link copied.', { kind: 'info' }); } catch { document.execCommand && document.execCommand('copy'); }
        },
      }, 'Copy');
      replace(shareOut, h('div', { class: 'row' }, field, copy), h('p', { class: 'hint' }, `Valid until ${new Date(r.expires).toLocaleString()}.`));
    } catch (err) {
      const [msg, detail] = explain(err, 'This recording');
      showAlert(msg, { detail });
    }
  }

  // ---- keyboard ------------------------------------------------------------------
  on(document, 'keydown', e => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const typing = t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (typing) return;
    const control = t instanceof HTMLElement && /^(BUTTON|A|SUMMARY)$/.test(t.tagName);
    switch (e.key) {
      case ' ':
      case 'Spacebar':
        if (control) return; // the focused button's own action
        togglePlay(); break;
      case 'k': case 'K': togglePlay(); break;
      case 'ArrowLeft': seekTo(now() - SEEK_STEP); break;
      case 'ArrowRight': seekTo(now() + SEEK_STEP); break;
      case 'j': case 'J': trickStep(-1); break;
      case 'l': case 'L': trickStep(1); break;
      case 'f': case 'F': toggleFullscreen(); break;
      case 'm': case 'M': video.muted = !video.muted; break;
      case 'i': case 'I': setIn(); break;
      case 'o': case 'O': setOut(); break;
      case 'Escape':
        if (!st.trick) return;
        stopTrick(now(), st.trick.resume); break;
      default: return;
    }
    e.preventDefault();
  });
  stage.focus({ preventScroll: true });

  return () => {
    cancelAnimationFrame(raf);
    for (const d of disposers) d();
    if (hls) hls.destroy();
    hls = null;
    for (const v of [video, trick]) {
      v.pause();
      v.removeAttribute('src');
      v.load();
    }
    if (window.__jitstreamPlayer && window.__jitstreamPlayer.video === video) delete window.__jitstreamPlayer;
  };
}

