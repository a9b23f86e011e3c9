// Thumbnail tracks: a WebVTT file whose cues name a region of a sprite
// sheet, "sprite-0.jpg#xywh=0,0,160,90" (the server's thumbs/thumbnails.vtt,
// see internal/streams/thumbs.go).

/** parseTime reads "hh:mm:ss.ttt" or "mm:ss.ttt" as seconds (NaN if malformed). */
export function parseTime(s) {
  const m = /^(?:(\d+):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?$/.exec(s.trim());
  if (!m) return NaN;
  return (Number(m[1] || 0) * 3600) + Number(m[2]) * 60 + Number(m[3]) + Number((m[4] || '0').padEnd(3, '0')) / 1000;
}

/**
 * parseThumbnails reads a WebVTT thumbnail track: the cues in order, each
 * {start, end, url, x, y, w, h} with url resolved against base (the
 * track's URL). A cue without #xywh shows the whole picture (w, h 0).
 */
export function parseThumbnails(text, base) {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  if (!/^WEBVTT/.test(lines[0] || '')) throw new Error('not a WebVTT file');
  const cues = [];
  for (let i = 1; i < lines.length; i++) {
    const arrow = lines[i].indexOf('-->');
    if (arrow < 0) continue;
    const start = parseTime(lines[i].slice(0, arrow));
    const end = parseTime(lines[i].slice(arrow + 3).trim().split(/\s+/)[0]);
    const payload = (lines[i + 1] || '').trim();
    if (!isFinite(start) || !isFinite(end) || !payload) continue;
    i++;
    const [file, hash = ''] = payload.split('#');
    const cue = { start, end, url: new URL(file, base).href, x: 0, y: 0, w: 0, h: 0 };
    const m = /xywh=(?:pixel:)?(\d+),(\d+),(\d+),(\d+)/.exec(hash);
    if (m) [cue.x, cue.y, cue.w, cue.h] = m.slice(1).map(Number);
    cues.push(cue);
  }
  return cues;
}

/** cueAt is the cue shown at time t (binary search over cues in order), or null. */
export function cueAt(cues, t) {
  let lo = 0, hi = cues.length - 1, found = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cues[mid].start <= t) { found = cues[mid]; lo = mid + 1; } else hi = mid - 1;
  }
  if (!found && cues.length) found = cues[0];
  return found;
}
