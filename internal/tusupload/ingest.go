package tusupload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/jitstream/jitstream/internal/apierr"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/jitstream/jitstream/internal/httpserve"
	"github.com/jitstream/jitstream/internal/library"
)

// Limits of the metadata.
const (
	maxTitle    = 256
	maxFilename = 255
	maxChapters = library.MaxChapters
)

// errGroup is the error (wrapped) of a group whose chapters do not fit
// together.
var errGroup = errors.New("inconsistent chapters")

// meta is what an upload's Upload-Metadata tells.
type meta struct {
	filename string
	title    string
	group    string // "" for a single upload
	chapter  int    // 1-based, with group
	chapters int    // with group
}

// parseMeta reads and checks an upload's metadata.
func parseMeta(md handler.MetaData) (meta, error) {
	m := meta{filename: md["filename"], title: md["title"], group: md["group"]}
	if m.filename == "" {
		m.filename = "upload.mp4"
	}
	if len(m.filename) > maxFilename {
		return m, fmt.Errorf("filename longer than %d bytes", maxFilename)
	}
	if len(m.title) > maxTitle {
		return m, fmt.Errorf("title longer than %d bytes", maxTitle)
	}
	c, n := md["chapter"], md["chapters"]
	if m.group == "" {
		if c != "" || n != "" {
			return m, errors.New("chapter and chapters need a group")
		}
		return m, nil
	}
	if library.CheckUser(m.group) != nil { // same rule as names: [A-Za-z0-9_-], at most 64
		return m, fmt.Errorf("group %q: use letters, digits, '_' and '-', at most 64", m.group)
	}
	var err error
	if m.chapters, err = strconv.Atoi(n); err != nil || m.chapters < 1 || m.chapters > maxChapters {
		return m, fmt.Errorf("chapters %q: want a count from 1 to %d", n, maxChapters)
	}
	if m.chapter, err = strconv.Atoi(c); err != nil || m.chapter < 1 || m.chapter > m.chapters {
		return m, fmt.Errorf("chapter %q: want a number from 1 to chapters (%d)", c, m.chapters)
	}
	return m, nil
}

// claimKey names what an ingest of the upload works on: its group, or the
// upload alone.
func claimKey(user string, m meta, tid string) string {
	if m.group != "" {
		return user + "/group/" + m.group
	}
	return tid
}

// preCreate is tusd's PreUploadCreateCallback: it checks the metadata and
// gives the upload an id under its user.
func (s *Service) preCreate(hook handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	user, _ := hook.Context.Value(userKey{}).(string)
	if user == "" {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errors.New("tusupload: upload request without a user")
	}
	if hook.Upload.Size == 0 && !hook.Upload.SizeIsDeferred {
		return handler.HTTPResponse{}, handler.FileInfoChanges{},
			jsonError(http.StatusBadRequest, "empty upload", "Upload-Length is 0: there is nothing to ingest")
	}
	m, err := parseMeta(hook.Upload.MetaData)
	if err != nil {
		return handler.HTTPResponse{}, handler.FileInfoChanges{},
			jsonError(http.StatusBadRequest, "invalid upload metadata", err.Error())
	}
	if err := s.checkQuota(hookContext(hook), user, hook.Upload.Size); err != nil {
		status, msg := statusOf(err)
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, jsonError(status, msg, err.Error())
	}
	if m.group != "" {
		if err := s.checkChapter(user, m); err != nil {
			return handler.HTTPResponse{}, handler.FileInfoChanges{},
				jsonError(http.StatusConflict, "chapter conflict", err.Error())
		}
	}
	return handler.HTTPResponse{}, handler.FileInfoChanges{ID: tusID(user, newID())}, nil
}

// checkQuota refuses a new upload of size bytes that does not fit user's
// quota, counting the unfinished uploads of the user as stored.
func (s *Service) checkQuota(ctx context.Context, user string, size int64) error {
	u, err := s.lib.UserInfo(ctx, user)
	if err != nil || u.Quota == 0 {
		return err
	}
	ups, err := s.scan(user)
	if err != nil {
		return err
	}
	pending := size
	for _, up := range ups {
		if up.info != nil && up.rec == nil {
			pending += up.info.Size
		}
	}
	if err := s.lib.CheckQuota(ctx, user, pending); err != nil {
		var qe *library.QuotaError
		if errors.As(err, &qe) && pending != size {
			return fmt.Errorf("%w (counting %s of unfinished uploads)", err, library.FormatSize(pending-size))
		}
		return err
	}
	return nil
}

// checkChapter refuses a new chapter of a group that has it already, that
// disagrees on the number of chapters, or that was ingested.
func (s *Service) checkChapter(user string, m meta) error {
	ups, err := s.scan(user)
	if err != nil {
		return err
	}
	for _, u := range ups {
		if u.meta.group != m.group {
			continue
		}
		switch {
		case u.rec != nil && u.info == nil:
			return fmt.Errorf("group %q was ingested already (upload %s)", m.group, u.id)
		case u.meta.chapters != m.chapters:
			return fmt.Errorf("group %q has %d chapters, not %d (upload %s)", m.group, u.meta.chapters, m.chapters, u.id)
		case u.meta.chapter == m.chapter:
			return fmt.Errorf("chapter %d of group %q is upload %s already: resume it, or DELETE it first", m.chapter, m.group, u.id)
		}
	}
	return nil
}

// preFinish is tusd's PreFinishResponseCallback, called when the last
// byte of an upload was written: it ingests the upload and reports the
// outcome in headers of the answer.
func (s *Service) preFinish(hook handler.HookEvent) (handler.HTTPResponse, error) {
	// The ingest goes on if the client goes away: its result is kept.
	o := s.finish(context.WithoutCancel(hookContext(hook)), hook.Upload.ID)
	h := handler.HTTPHeader{HeaderIngestStatus: strconv.Itoa(o.Status)}
	if o.Asset != "" {
		h[HeaderAsset] = o.Asset
	}
	return handler.HTTPResponse{Header: h}, nil
}

// outcome is the result of an upload's ingest.
type outcome struct {
	Status int    `json:"status"` // 200 when committed, 202 not yet settled, else the error status
	Asset  string `json:"asset,omitempty"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// record is what is kept of a finished upload, in {id}.result.
type record struct {
	outcome
	Info     handler.FileInfo `json:"info"` // the upload as tusd described it, complete
	Finished time.Time        `json:"finished"`
}

// settled reports whether the record is final: a 5xx outcome is retried.
func (r *record) settled() bool { return r != nil && r.Status < 500 }

// claim marks key as being worked on. It returns a release function, or,
// when key is busy, a channel closed when it is released.
func (s *Service) claim(key string) (release func(), busy <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.claims[key]; ok {
		return nil, ch
	}
	ch := make(chan struct{})
	s.claims[key] = ch
	return func() {
		s.mu.Lock()
		delete(s.claims, key)
		s.mu.Unlock()
		close(ch)
	}, nil
}

// claimed reports whether key is being worked on.
func (s *Service) claimed(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.claims[key]
	return ok
}

// finish ingests the completed upload tid, with the other chapters of its
// group when they are all complete, unless another call did or does it
// (then it waits for it and reports its outcome).
func (s *Service) finish(ctx context.Context, tid string) outcome {
	user, _, ok := splitTusID(tid)
	if !ok {
		return outcome{Status: http.StatusInternalServerError, Error: "internal error", Detail: "bad upload id " + tid}
	}
	info, err := s.info(ctx, tid)
	if err != nil {
		return failure(fmt.Errorf("tusupload: upload %s: %w", tid, err))
	}
	m, err := parseMeta(info.MetaData)
	if err != nil {
		return failure(fmt.Errorf("tusupload: upload %s: %w", tid, err))
	}
	key := claimKey(user, m, tid)
	var release func()
	for {
		var busy <-chan struct{}
		if release, busy = s.claim(key); release != nil {
			break
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return failure(ctx.Err())
		}
	}
	defer release()
	if rec := s.readRecord(tid); rec.settled() {
		return rec.outcome
	}
	members, o := s.group(ctx, user, tid, info, m)
	if o.Status == http.StatusAccepted {
		return o
	}
	if o.Status == 0 {
		o = s.ingest(ctx, user, members)
		if ctx.Err() != nil {
			return o // stopped: left for the next sweep, with no record
		}
	}
	now := time.Now().UTC()
	for _, u := range members {
		if err := s.writeRecord(&record{outcome: o, Info: u.info, Finished: now}); err != nil {
			s.log.Error("upload result not recorded", "upload", u.tid, "err", err)
		}
	}
	if o.Status < 500 {
		for _, u := range members {
			s.removeData(u.tid)
		}
	}
	return o
}

// member is an upload of a group (or a single upload) about to be ingested.
type member struct {
	tid  string
	info handler.FileInfo
	meta meta
}

// group returns the uploads to ingest with tid: tid alone, or every
// chapter of its group in order. The outcome's status is 0 when they are
// ready, 202 when chapters are missing, or an error status (when the
// chapters do not fit together, then members are those to report it to).
func (s *Service) group(ctx context.Context, user, tid string, info handler.FileInfo, m meta) ([]member, outcome) {
	self := member{tid: tid, info: info, meta: m}
	if m.group == "" {
		return []member{self}, outcome{}
	}
	ups, err := s.scan(user)
	if err != nil {
		return []member{self}, failure(err)
	}
	byChapter := map[int][]member{}
	var all []member
	for _, u := range ups {
		if u.info == nil || u.meta.group != m.group {
			continue
		}
		mb := member{tid: u.tid, info: *u.info, meta: u.meta}
		all = append(all, mb)
		if u.meta.chapters != m.chapters {
			return all, failure(fmt.Errorf("%w: group %q: upload %s says %d chapters, %s says %d",
				errGroup, m.group, u.tid, u.meta.chapters, tid, m.chapters))
		}
		if u.info.Offset == u.info.Size {
			byChapter[u.meta.chapter] = append(byChapter[u.meta.chapter], mb)
		}
	}
	var missing []string
	members := make([]member, 0, m.chapters)
	for c := 1; c <= m.chapters; c++ {
		switch len(byChapter[c]) {
		case 0:
			missing = append(missing, strconv.Itoa(c))
		case 1:
			members = append(members, byChapter[c][0])
		default:
			return all, failure(fmt.Errorf("%w: group %q: chapter %d was uploaded %d times", errGroup, m.group, c, len(byChapter[c])))
		}
	}
	if len(missing) > 0 {
		return nil, outcome{Status: http.StatusAccepted, Error: "waiting",
			Detail: fmt.Sprintf("group %q: waiting for chapter %s of %d", m.group, strings.Join(missing, ", "), m.chapters)}
	}
	return members, outcome{}
}

// ingest streams the members into one new asset of user.
func (s *Service) ingest(ctx context.Context, user string, members []member) outcome {
	files := make([]*os.File, 0, len(members))
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	title := ""
	for _, u := range members {
		f, err := os.Open(s.binPath(u.tid))
		if err != nil {
			return failure(fmt.Errorf("tusupload: open upload %s: %w", u.tid, err))
		}
		files = append(files, f)
		if title == "" {
			title = u.meta.title
		}
	}
	i := 0
	a, err := s.lib.Ingest(ctx, user, title, func() (*library.Upload, error) {
		if i == len(members) {
			return nil, nil
		}
		up := &library.Upload{Name: members[i].meta.filename, R: files[i]}
		i++
		return up, nil
	})
	ids := make([]string, len(members))
	for i, u := range members {
		_, ids[i], _ = splitTusID(u.tid)
	}
	if err != nil {
		o := failure(err)
		lvl := slog.LevelInfo
		if o.Status >= 500 {
			lvl = slog.LevelError
		}
		s.log.Log(ctx, lvl, "upload not ingested", "user", user, "uploads", ids, "status", o.Status, "err", err)
		return o
	}
	s.log.Info("upload ingested", "user", user, "uploads", ids, "asset", a.ID)
	return outcome{Status: http.StatusOK, Asset: a.ID}
}

// failure is the outcome of an error.
func failure(err error) outcome {
	status, msg := statusOf(err)
	return outcome{Status: status, Error: msg, Detail: err.Error()}
}

// statusOf maps an ingest error to a status and a message, as the upload
// API does.
func statusOf(err error) (int, string) {
	if status, msg, ok := apierr.Store(err); ok {
		return status, msg
	}
	if status, msg, ok := apierr.Ingest(err); ok {
		return status, msg
	}
	switch {
	case errors.Is(err, errGroup):
		return http.StatusConflict, "inconsistent chapters"
	case errors.Is(err, handler.ErrNotFound):
		return http.StatusNotFound, "unknown upload"
	}
	return http.StatusInternalServerError, "internal error"
}

// result answers GET {upload}/result.
func (s *Service) result(w http.ResponseWriter, r *http.Request, user, id string) {
	ctx := r.Context()
	tid := tusID(user, id)
	if rec := s.readRecord(tid); rec.settled() {
		if rec.Status != http.StatusOK {
			httpserve.Error(w, rec.Status, rec.Error, rec.Detail)
			return
		}
		a, err := s.lib.Asset(ctx, user, rec.Asset)
		if err != nil {
			status, msg := statusOf(err)
			if errors.Is(err, library.ErrUnknownAsset) {
				status, msg = http.StatusGone, "asset deleted"
			}
			httpserve.Error(w, status, msg, err.Error())
			return
		}
		d, err := s.out.Describe(ctx, a)
		if err != nil {
			httpserve.Error(w, http.StatusInternalServerError, "internal error", err.Error())
			return
		}
		w.Header().Set("Location", BasePath+url.PathEscape(user)+"/assets/"+url.PathEscape(a.ID))
		httpserve.WriteJSON(w, http.StatusOK, d)
		return
	}
	info, err := s.info(ctx, tid)
	if err != nil {
		status, msg := statusOf(err)
		httpserve.Error(w, status, msg, fmt.Sprintf("upload %s: %v", id, err))
		return
	}
	if info.Offset < info.Size {
		httpserve.Error(w, http.StatusConflict, "upload incomplete",
			fmt.Sprintf("received %d of %d bytes: PATCH the rest", info.Offset, info.Size))
		return
	}
	m, _ := parseMeta(info.MetaData)
	pending := func(status, detail string) {
		httpserve.WriteJSON(w, http.StatusAccepted, map[string]string{"status": status, "detail": detail})
	}
	switch {
	case s.claimed(claimKey(user, m, tid)):
		pending("ingesting", "the upload is being ingested")
	case m.group != "":
		if _, o := s.group(ctx, user, tid, info, m); o.Status == http.StatusAccepted {
			pending("waiting", o.Detail)
			return
		}
		fallthrough
	default:
		detail := "the upload is complete and will be ingested by the next sweep"
		if rec := s.readRecord(tid); rec != nil {
			detail += "; the last attempt failed: " + rec.Detail
		}
		pending("queued", detail)
	}
}

// Paths of an upload's files.
func (s *Service) binPath(tid string) string {
	return filepath.Join(s.opt.Dir, filepath.FromSlash(tid))
}
func (s *Service) infoPath(tid string) string {
	return s.binPath(tid) + ".info"
}
func (s *Service) recordPath(tid string) string { return s.binPath(tid) + ".result" }

// info describes an upload that has data (not yet ingested).
func (s *Service) info(ctx context.Context, tid string) (handler.FileInfo, error) {
	up, err := s.files.GetUpload(ctx, tid)
	if err != nil {
		return handler.FileInfo{}, err
	}
	return up.GetInfo(ctx)
}

// readRecord returns the record of a finished upload, or nil.
func (s *Service) readRecord(tid string) *record {
	b, err := os.ReadFile(s.recordPath(tid))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("upload result unreadable", "upload", tid, "err", err)
		}
		return nil
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		s.log.Warn("upload result unreadable", "upload", tid, "err", err)
		return nil
	}
	return &rec
}

// writeRecord stores rec atomically.
func (s *Service) writeRecord(rec *record) error {
	rec.Info.Offset = rec.Info.Size
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("tusupload: encode result: %w", err)
	}
	p := s.recordPath(rec.Info.ID)
	tmp, err := os.CreateTemp(filepath.Dir(p), ".result-*")
	if err != nil {
		return fmt.Errorf("tusupload: write result: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("tusupload: write result: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("tusupload: write result: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("tusupload: write result: %w", err)
	}
	return nil
}

// removeData deletes an upload's bytes and tusd's description, keeping its
// record.
func (s *Service) removeData(tid string) {
	for _, p := range []string{s.binPath(tid), s.infoPath(tid)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("upload data not removed", "path", p, "err", err)
		}
	}
}

// upload is what scan finds of one upload.
type upload struct {
	tid  string
	id   string
	info *handler.FileInfo // nil once its data was removed
	meta meta
	rec  *record
	// activity is when the upload last received bytes (or was created),
	// or for a finished one when its record was written.
	activity time.Time
}

// scan lists user's uploads, with and without data.
func (s *Service) scan(user string) ([]*upload, error) {
	dir := filepath.Join(s.opt.Dir, user, "uploads")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("tusupload: list uploads of %s: %w", user, err)
	}
	byID := map[string]*upload{}
	for _, e := range ents {
		id, ext, _ := strings.Cut(e.Name(), ".")
		if !validID(id) || (ext != "" && ext != "info" && ext != "result") || byID[id] != nil {
			continue
		}
		u := &upload{tid: tusID(user, id), id: id}
		if ok := s.load(u); ok {
			byID[id] = u
		}
	}
	out := make([]*upload, 0, len(byID))
	for _, u := range byID {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b *upload) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

// load fills u from its files; false if it has none (deleted meanwhile).
func (s *Service) load(u *upload) bool {
	if b, err := os.ReadFile(s.infoPath(u.tid)); err == nil {
		var info handler.FileInfo
		if json.Unmarshal(b, &info) == nil {
			if fi, err := os.Stat(s.binPath(u.tid)); err == nil {
				info.Offset = fi.Size()
				u.activity = fi.ModTime()
				u.info = &info
			}
		}
	}
	u.rec = s.readRecord(u.tid)
	switch {
	case u.info != nil:
		u.meta, _ = parseMeta(u.info.MetaData)
		if fi, err := os.Stat(s.infoPath(u.tid)); err == nil && fi.ModTime().After(u.activity) {
			u.activity = fi.ModTime()
		}
	case u.rec != nil:
		u.meta, _ = parseMeta(u.rec.Info.MetaData)
		if fi, err := os.Stat(s.recordPath(u.tid)); err == nil {
			u.activity = fi.ModTime()
		}
	default:
		// Data without its description or the reverse: what a crash
		// while creating or deleting an upload leaves; the sweep deletes
		// it once expired.
		found := false
		for _, p := range []string{s.infoPath(u.tid), s.binPath(u.tid)} {
			if fi, err := os.Stat(p); err == nil {
				found = true
				if fi.ModTime().After(u.activity) {
					u.activity = fi.ModTime()
				}
			}
		}
		return found
	}
	return true
}

// dataStore is tusd's data store: tusd's file store, plus the uploads that
// were ingested (their data removed, their record kept), which it presents
// as complete so that HEAD tells a client the upload is done.
type dataStore struct{ s *Service }

// NewUpload implements handler.DataStore.
func (d dataStore) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	up, err := d.s.files.NewUpload(ctx, info)
	if err != nil {
		return nil, fmt.Errorf("tusupload: create upload: %w", err)
	}
	return up, nil
}

// GetUpload implements handler.DataStore.
func (d dataStore) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	up, err := d.s.files.GetUpload(ctx, id)
	if errors.Is(err, handler.ErrNotFound) {
		if rec := d.s.readRecord(id); rec != nil {
			return finishedUpload{rec.Info}, nil
		}
	}
	return up, err
}

// AsTerminatableUpload implements handler.TerminaterDataStore.
func (d dataStore) AsTerminatableUpload(up handler.Upload) handler.TerminatableUpload {
	if _, ok := up.(finishedUpload); ok {
		return terminator{d.s, up, nil}
	}
	return terminator{d.s, up, d.s.files.AsTerminatableUpload(up)}
}

// terminator deletes an upload: its data, if any, and its record.
type terminator struct {
	s    *Service
	up   handler.Upload
	data handler.TerminatableUpload // nil for a finished upload
}

// Terminate implements handler.TerminatableUpload.
func (t terminator) Terminate(ctx context.Context) error {
	info, err := t.up.GetInfo(ctx)
	if err != nil {
		return fmt.Errorf("tusupload: delete upload: %w", err)
	}
	if t.data != nil {
		if err := t.data.Terminate(ctx); err != nil {
			return fmt.Errorf("tusupload: delete upload %s: %w", info.ID, err)
		}
	}
	if err := os.Remove(t.s.recordPath(info.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tusupload: delete upload %s: %w", info.ID, err)
	}
	return nil
}

// finishedUpload is an upload that was ingested: complete, its data gone.
type finishedUpload struct{ info handler.FileInfo }

// errFinished is returned by the operations a finished upload does not
// support (tusd does not call them: it sees the upload complete).
var errFinished = handler.NewError("ERR_UPLOAD_FINISHED", "the upload was ingested and its data removed", http.StatusGone)

// WriteChunk implements handler.Upload.
func (f finishedUpload) WriteChunk(context.Context, int64, io.Reader) (int64, error) {
	return 0, errFinished
}

// GetInfo implements handler.Upload.
func (f finishedUpload) GetInfo(context.Context) (handler.FileInfo, error) { return f.info, nil }

// GetReader implements handler.Upload.
func (f finishedUpload) GetReader(context.Context) (io.ReadCloser, error) { return nil, errFinished }

// FinishUpload implements handler.Upload.
func (f finishedUpload) FinishUpload(context.Context) error { return nil }
