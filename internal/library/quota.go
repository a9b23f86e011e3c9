package library

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/jitstream/jitstream/internal/store"
)

// ErrOverQuota is returned (wrapped, as a *QuotaError) when storing an
// upload would take a user past their quota.
var ErrOverQuota = errors.New("over quota")

// QuotaError tells by how much an upload does not fit a user's quota.
type QuotaError struct {
	User  string
	Quota int64 // bytes the user may store
	Used  int64 // bytes stored (committed originals)
	// Want is the size of the upload when known; -1 when the upload was
	// stopped while streaming, past what was left.
	Want int64
}

// Error implements error.
func (e *QuotaError) Error() string {
	left := max(e.Quota-e.Used, 0)
	if e.Want < 0 {
		return fmt.Sprintf("over quota: user %s may store %s and uses %s: the upload went past the %s left, and nothing of it was kept",
			e.User, FormatSize(e.Quota), FormatSize(e.Used), FormatSize(left))
	}
	return fmt.Sprintf("over quota: user %s may store %s and uses %s: an upload of %s does not fit in the %s left",
		e.User, FormatSize(e.Quota), FormatSize(e.Used), FormatSize(e.Want), FormatSize(left))
}

// Is makes errors.Is(err, ErrOverQuota) true.
func (e *QuotaError) Is(target error) bool { return target == ErrOverQuota }

// UserInfo loads a user's record.
func (l *Library) UserInfo(ctx context.Context, user string) (*User, error) {
	if err := l.HasUser(ctx, user); err != nil {
		return nil, err
	}
	rc, err := l.st.Get(ctx, userKey(user), 0, -1)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownUser, user)
		}
		return nil, fmt.Errorf("library: load user %s: %w", user, err)
	}
	defer rc.Close()
	var u User
	if err := json.NewDecoder(io.LimitReader(rc, 64<<10)).Decode(&u); err != nil {
		return nil, fmt.Errorf("library: user %s: bad record: %w", user, err)
	}
	u.Name = user
	return &u, nil
}

// SetQuota sets the bytes user may store (originals, as uploaded); 0
// means no limit. Assets already stored stay, even over a lower quota;
// new uploads are refused until the user is under it again.
func (l *Library) SetQuota(ctx context.Context, user string, quota int64) error {
	if quota < 0 {
		return fmt.Errorf("library: negative quota %d", quota)
	}
	u, err := l.UserInfo(ctx, user)
	if err != nil {
		return err
	}
	u.Quota = quota
	return l.putUser(ctx, u)
}

func (l *Library) putUser(ctx context.Context, u *User) error {
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("library: save user %s: %w", u.Name, err)
	}
	if _, err := l.st.Put(ctx, userKey(u.Name), strings.NewReader(string(b))); err != nil {
		return fmt.Errorf("library: save user %s: %w", u.Name, err)
	}
	return nil
}

// Usage is the bytes user stores: the originals of the committed assets,
// as uploaded (indexes and metadata, about 1% more, are not counted).
func (l *Library) Usage(ctx context.Context, user string) (int64, error) {
	assets, err := l.Assets(ctx, user)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, a := range assets {
		for _, c := range a.Chapters {
			n += c.Size
		}
	}
	return n, nil
}

// CheckQuota returns a *QuotaError when an upload of size bytes (when
// known, from Content-Length or Upload-Length, before reading any of it)
// would take user past their quota; nil when it fits or the user has no
// quota.
func (l *Library) CheckQuota(ctx context.Context, user string, size int64) error {
	u, err := l.UserInfo(ctx, user)
	if err != nil || u.Quota == 0 {
		return err
	}
	used, err := l.Usage(ctx, user)
	if err != nil {
		return err
	}
	if used+max(size, 0) > u.Quota {
		return &QuotaError{User: user, Quota: u.Quota, Used: used, Want: max(size, 0)}
	}
	return nil
}

// quotaReader stops an upload that goes past what its user has left.
type quotaReader struct {
	r    io.Reader
	left *int64 // bytes left, shared by the chapters of one ingest
	err  func() error
}

// Read implements io.Reader.
func (q quotaReader) Read(p []byte) (int, error) {
	n, err := q.r.Read(p)
	*q.left -= int64(n)
	if *q.left < 0 {
		return 0, q.err()
	}
	return n, err
}

// RemoveUser deletes user: every asset (their tombstones stay, so that
// their ids are never given again: URLs keep their meaning even if the
// user is added again), everything else stored under the user (tokens),
// and last the user record. It can be run again after a failure.
func (l *Library) RemoveUser(ctx context.Context, user string) error {
	if err := l.HasUser(ctx, user); err != nil {
		return err
	}
	assets, err := l.Assets(ctx, user)
	if err != nil {
		return err
	}
	for _, a := range assets {
		if err := l.Delete(ctx, user, a.ID); err != nil {
			return fmt.Errorf("library: remove user %s: asset %s: %w", user, a.ID, err)
		}
	}
	objs, err := l.st.List(ctx, "users/"+user+"/")
	if err != nil {
		return fmt.Errorf("library: remove user %s: %w", user, err)
	}
	for _, o := range objs {
		if o.Key == userKey(user) || strings.HasSuffix(o.Key, "/deleted") && strings.HasPrefix(o.Key, assetsPrefix(user)) {
			continue
		}
		if err := l.st.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("library: remove user %s: %w", user, err)
		}
	}
	if err := l.st.Delete(ctx, userKey(user)); err != nil {
		return fmt.Errorf("library: remove user %s: %w", user, err)
	}
	return nil
}

// sizeUnits are the units ParseSize knows, lower case.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
}

// ParseSize reads a size such as "50GB", "1.5 TB", "500MiB" or "1000000"
// (bytes): decimal units (KB, MB, GB, TB, PB) and binary ones (KiB, MiB,
// GiB, TiB, PiB), case-insensitive. "0", "none" and "unlimited" are 0.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "none" || t == "unlimited" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mult, ok := sizeUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || f < 0 || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes with an optional unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
	}
	return int64(math.Round(f * mult)), nil
}

// FormatSize writes a size in decimal units, e.g. "50 GB", "1.5 MB".
func FormatSize(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	s := strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64)
	return strings.TrimSuffix(s, ".0") + " " + string("kMGTP"[exp]) + "B"
}
