package playlist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/jitstream/jitstream/internal/library"
)

// ErrInvalid is returned (wrapped) for a playlist definition that is not
// valid, with a message naming the field at fault, suitable to show to the
// user who sent it, like
//
//	invalid playlist: entries[3].ad.pools[0].when.hours: from 25 out of 0-24
var ErrInvalid = errors.New("invalid playlist")

// ErrTooLarge is returned by Parse, wrapped together with ErrInvalid, for
// a definition larger than its limit (for a 413 answer if wanted).
var ErrTooLarge = errors.New("playlist definition too large")

// Limits of the values of a definition beyond those of types.go.
const (
	maxCount        = 10  // AdSlot.Count
	maxProfile      = 16  // fields of Targeting.Profile
	maxTargetValues = 300 // values of one targeting list (there are 249 countries)
	maxValueLen     = 64  // bytes of a device or profile field name
	maxProfileValue = 256 // bytes of a profile value
	// maxSeconds bounds times (clip start and end, mid-roll At): stream
	// URLs refuse clip times above it (internal/streams parseClip).
	maxSeconds = 1e7
	// maxTimeChars bounds the length of a time formatted as it is in a
	// stream URL, strconv.FormatFloat(x, 'f', -1, 64) (maxClipNumber of
	// internal/streams): it refuses times like 1e-30.
	maxTimeChars = 32
)

// Parse reads a playlist definition from untrusted JSON: one JSON object
// of at most maxBytes bytes, with no field Playlist does not know and no
// key given twice in an object (ignoring case, as encoding/json matches
// keys), then validated (see Validate). Empty lists and maps come out
// nil, so that the result marshals and parses back to the same value.
// Errors wrap ErrInvalid (and ErrTooLarge for a body over maxBytes), with
// a message for the user; a failure to read r is returned as it is,
// wrapped.
func Parse(r io.Reader, maxBytes int64) (*Playlist, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("playlist: parse: limit %d bytes", maxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("playlist: reading the definition: %w", err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%w: %w: more than %d bytes", ErrInvalid, ErrTooLarge, maxBytes)
	}
	if err := checkKeys(b); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Playlist
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object at byte %d", ErrInvalid, dec.InputOffset())
	}
	p.canonicalize()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// jsonError describes a decoding error without Go's type names where it
// can.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.As(err, &te) && te.Field == "":
		return fmt.Sprintf("a JSON %s is not a playlist (an object)", te.Value)
	case errors.As(err, &te) && te.Type != nil:
		return fmt.Sprintf("%s: a JSON %s is not a %s", te.Field, te.Value, jsonKind(te.Type.Kind().String()))
	case errors.Is(err, io.EOF):
		return "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names a Go kind for JSON users.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "whole number"
	case strings.HasPrefix(k, "float"):
		return "number"
	case k == "slice", k == "array":
		return "list"
	case k == "map", k == "struct", k == "ptr":
		return "object"
	case k == "bool":
		return "boolean"
	}
	return k
}

// checkKeys walks the JSON b and refuses an object that has a key twice
// (ignoring case: encoding/json would let the last one win, quietly). It
// also refuses what is not JSON, and values nested deeper than a
// definition ever is.
func checkKeys(b []byte) error {
	const maxNesting = 16
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		object bool
		keys   map[string]bool // folded keys seen, of an object
		key    bool            // the next token of an object is a key
	}
	var stack []frame
	for {
		t, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s", ErrInvalid, jsonError(err))
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := t.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k := foldKey(t.(string))
			if top.keys[k] {
				return fmt.Errorf("%w: key %q appears twice in an object (at byte %d)", ErrInvalid, t, dec.InputOffset())
			}
			top.keys[k] = true
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // after this value, a key or the end
		}
		if d, ok := t.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) == maxNesting {
					return fmt.Errorf("%w: JSON nested deeper than %d levels", ErrInvalid, maxNesting)
				}
				stack = append(stack, frame{object: d == '{', keys: map[string]bool{}, key: d == '{'})
			case ']':
				stack = stack[:len(stack)-1]
			}
		}
	}
}

// foldKey maps s to a key equal for all the strings equal to s under
// Unicode simple case folding (bytes.EqualFold, which encoding/json uses to
// match keys to fields): each rune becomes the smallest of its orbit.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// canonicalize makes empty lists and maps nil, as they marshal (omitted).
func (p *Playlist) canonicalize() {
	for i := range p.Entries {
		a := p.Entries[i].Ad
		if a == nil {
			continue
		}
		if len(a.Pools) == 0 {
			a.Pools = nil
		}
		if len(a.Default) == 0 {
			a.Default = nil
		}
		for j := range a.Pools {
			w := &a.Pools[j].When
			if len(w.Country) == 0 {
				w.Country = nil
			}
			if len(w.Language) == 0 {
				w.Language = nil
			}
			if len(w.Device) == 0 {
				w.Device = nil
			}
			if len(w.Profile) == 0 {
				w.Profile = nil
			}
		}
	}
}

// Validate checks the definition; errors wrap ErrInvalid and name the
// field at fault, like "entries[3].ad.pools[0].when.hours: from 25 out of
// 0-24".
//
// ID and User may be empty (an API body takes them from its URL); when set
// they must be names as the library accepts them (see validName), as must
// the ids of assets and nested playlists. Store.Put requires both.
func (p *Playlist) Validate() error { return p.validate("") }

// validate is Validate with the fields named after prefix (the path of a
// nested playlist, "p:intro/").
func (p *Playlist) validate(prefix string) error {
	if p.ID != "" && !validName(p.ID) {
		return invalid(prefix+"id", "%q is not a playlist id (%s)", p.ID, nameRule)
	}
	if p.User != "" && !validName(p.User) {
		return invalid(prefix+"user", "%q is not a user name (%s)", p.User, nameRule)
	}
	if len(p.Entries) == 0 {
		return invalid(prefix+"entries", "none: a playlist needs at least one entry")
	}
	if len(p.Entries) > MaxEntries {
		return invalid(prefix+"entries", "%d entries, more than %d", len(p.Entries), MaxEntries)
	}
	for i := range p.Entries {
		if err := p.validateEntry(prefix, i); err != nil {
			return err
		}
	}
	return nil
}

// validateEntry checks entries[i].
func (p *Playlist) validateEntry(prefix string, i int) error {
	e := &p.Entries[i]
	at := fmt.Sprintf("%sentries[%d]", prefix, i)
	n := 0
	for _, set := range []bool{e.Asset != "", e.Playlist != "", e.Ad != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return invalid(at, "has %s: give exactly one of asset, playlist or ad", kindsOf(e))
	}
	switch {
	case e.Asset != "":
		if !validName(e.Asset) {
			return invalid(at+".asset", "%q is not an asset id (%s)", e.Asset, nameRule)
		}
		if err := checkClip(at, e.Start, e.End); err != nil {
			return err
		}
	case e.Playlist != "":
		if !validName(e.Playlist) {
			return invalid(at+".playlist", "%q is not a playlist id (%s)", e.Playlist, nameRule)
		}
		if p.ID != "" && e.Playlist == p.ID {
			return invalid(at+".playlist", "%q is this playlist itself", e.Playlist)
		}
		if err := checkNoClip(at, e); err != nil {
			return err
		}
	default:
		if err := checkNoClip(at, e); err != nil {
			return err
		}
		if err := checkSlot(at+".ad", e.Ad); err != nil {
			return err
		}
	}
	if e.Rules != nil {
		if s := e.Rules.SkipAfterPercent; s < 0 || s > 100 {
			return invalid(at+".rules.skip_after_percent", "%d out of 0-100", s)
		}
	}
	return nil
}

// kindsOf lists what an entry has, for errors.
func kindsOf(e *Entry) string {
	var k []string
	if e.Asset != "" {
		k = append(k, "asset")
	}
	if e.Playlist != "" {
		k = append(k, "playlist")
	}
	if e.Ad != nil {
		k = append(k, "ad")
	}
	if len(k) == 0 {
		return "none of them"
	}
	return strings.Join(k, " and ")
}

// checkNoClip refuses start and end on an entry that is not an asset.
func checkNoClip(at string, e *Entry) error {
	if e.Start != 0 {
		return invalid(at+".start", "only an asset entry is clipped")
	}
	if e.End != 0 {
		return invalid(at+".end", "only an asset entry is clipped")
	}
	return nil
}

// checkClip checks the clip [start, end) of at.
func checkClip(at string, start, end float64) error {
	if err := checkTime(at+".start", start); err != nil {
		return err
	}
	if err := checkTime(at+".end", end); err != nil {
		return err
	}
	if end != 0 && end <= start {
		return invalid(at+".end", "%s is not after start %s", fmtTime(end), fmtTime(start))
	}
	return nil
}

// checkTime checks a time in seconds.
func checkTime(at string, t float64) error {
	switch {
	case math.IsNaN(t) || math.IsInf(t, 0):
		return invalid(at, "not a finite number")
	case t < 0:
		return invalid(at, "%s is negative", fmtTime(t))
	case t > maxSeconds:
		return invalid(at, "%s is more than %s seconds", fmtTime(t), fmtTime(maxSeconds))
	case len(fmtTime(t)) > maxTimeChars:
		return invalid(at, "%s has more than %d digits", strconv.FormatFloat(t, 'g', -1, 64), maxTimeChars)
	}
	return nil
}

// fmtTime formats seconds as stream URLs and slot names do.
func fmtTime(t float64) string { return strconv.FormatFloat(t, 'f', -1, 64) }

// checkSlot checks the ad slot at at.
func checkSlot(at string, a *AdSlot) error {
	switch a.Position {
	case PreRoll, PostRoll:
		if a.At != 0 {
			return invalid(at+".at", "only a mid-roll has a time (this is a %s-roll)", a.Position)
		}
	case MidRoll:
		if err := checkTime(at+".at", a.At); err != nil {
			return err
		}
	case "":
		return invalid(at+".position", "missing: %q, %q or %q", PreRoll, MidRoll, PostRoll)
	default:
		return invalid(at+".position", "%q is not %q, %q or %q", a.Position, PreRoll, MidRoll, PostRoll)
	}
	if a.Count < 0 || a.Count > maxCount {
		return invalid(at+".count", "%d out of 0-%d", a.Count, maxCount)
	}
	if len(a.Pools) > MaxPools {
		return invalid(at+".pools", "%d pools, more than %d", len(a.Pools), MaxPools)
	}
	for j := range a.Pools {
		pat := fmt.Sprintf("%s.pools[%d]", at, j)
		pool := &a.Pools[j]
		if len(pool.Ads) == 0 {
			return invalid(pat+".ads", "none: a pool needs at least one ad")
		}
		if err := checkAds(pat+".ads", pool.Ads); err != nil {
			return err
		}
		if err := checkTargeting(pat+".when", &pool.When); err != nil {
			return err
		}
	}
	if err := checkAds(at+".default", a.Default); err != nil {
		return err
	}
	if len(a.Pools) == 0 && len(a.Default) == 0 {
		return invalid(at, "no ads: give pools or a default")
	}
	return nil
}

// checkAds checks a list of ads.
func checkAds(at string, ads []AdRef) error {
	if len(ads) > MaxAds {
		return invalid(at, "%d ads, more than %d", len(ads), MaxAds)
	}
	for k, ad := range ads {
		aat := fmt.Sprintf("%s[%d]", at, k)
		if !validName(ad.Asset) {
			if ad.Asset == "" {
				return invalid(aat+".asset", "missing")
			}
			return invalid(aat+".asset", "%q is not an asset id (%s)", ad.Asset, nameRule)
		}
		if err := checkClip(aat, ad.Start, ad.End); err != nil {
			return err
		}
	}
	return nil
}

// checkTargeting checks a pool's targeting.
func checkTargeting(at string, w *Targeting) error {
	if err := checkList(at+".country", w.Country, func(s string) string {
		if len(s) != 2 || !isLetter(s[0]) || !isLetter(s[1]) {
			return "is not a country code of 2 letters"
		}
		return ""
	}); err != nil {
		return err
	}
	if err := checkList(at+".language", w.Language, func(s string) string {
		if len(s) < 2 || len(s) > 8 || strings.IndexFunc(s, func(r rune) bool { return r > 0x7f || !isLetter(byte(r)) }) >= 0 {
			return "is not a primary language subtag (2 to 8 letters, like \"de\")"
		}
		return ""
	}); err != nil {
		return err
	}
	if err := checkList(at+".device", w.Device, func(s string) string {
		if !validToken(s) {
			return fmt.Sprintf("is not a device (1 to %d letters, digits, '.', '_' or '-')", maxValueLen)
		}
		return ""
	}); err != nil {
		return err
	}
	if len(w.Profile) > maxProfile {
		return invalid(at+".profile", "%d fields, more than %d", len(w.Profile), maxProfile)
	}
	for _, f := range slices.Sorted(maps.Keys(w.Profile)) {
		if !validToken(f) {
			return invalid(at+".profile", "field %q is not a name (1 to %d letters, digits, '.', '_' or '-')", f, maxValueLen)
		}
		vs := w.Profile[f]
		if len(vs) == 0 {
			return invalid(at+".profile."+f, "no values: list the values that match")
		}
		if err := checkList(at+".profile."+f, vs, func(s string) string {
			if s == "" || len(s) > maxProfileValue {
				return fmt.Sprintf("is not a value of 1 to %d bytes", maxProfileValue)
			}
			return ""
		}); err != nil {
			return err
		}
	}
	if h := w.Hours; h != nil {
		if h.From < 0 || h.From > 24 {
			return invalid(at+".hours", "from %d out of 0-24", h.From)
		}
		if h.To < 0 || h.To > 24 {
			return invalid(at+".hours", "to %d out of 0-24", h.To)
		}
		if h.From == h.To {
			return invalid(at+".hours", "from and to are both %d: an empty range", h.From)
		}
	}
	return nil
}

// checkList checks each value of a targeting list with bad, which says
// what is wrong with one, or "".
func checkList(at string, vs []string, bad func(string) string) error {
	if len(vs) > maxTargetValues {
		return invalid(at, "%d values, more than %d", len(vs), maxTargetValues)
	}
	for k, v := range vs {
		if msg := bad(v); msg != "" {
			return invalid(fmt.Sprintf("%s[%d]", at, k), "%q %s", v, msg)
		}
	}
	return nil
}

// invalid is an ErrInvalid naming the field at.
func invalid(at, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, at, fmt.Sprintf(format, args...))
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// validToken reports whether s is 1 to maxValueLen letters, digits, '.',
// '_' or '-' (a device or a profile field name).
func validToken(s string) bool {
	if len(s) == 0 || len(s) > maxValueLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isLetter(c), '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// nameRule describes validName for errors.
const nameRule = "1 to 64 letters, digits, '_' and '-', not starting with '_' or '-'"

// validName reports whether s is a valid user name, asset id or playlist
// id: the library's rule (library.ValidName), so that one rule names
// everything.
func validName(s string) bool { return library.ValidName(s) }
