package smooth

import (
	"errors"
	"fmt"
	"testing"
)

// FuzzParseFragmentPath checks ParseFragmentPath on any path: it fails
// with ErrNoFragment, or the path is exactly the canonical fragment path
// of what it returns (a positive bit rate, "video" or "audio", a start
// time that fits an int64).
func FuzzParseFragmentPath(f *testing.F) {
	for _, s := range []string{
		"QualityLevels(315647)/Fragments(video=61440)", "QualityLevels(64255)/Fragments(audio=0)",
		"QualityLevels(1)/Fragments(audio=9223372036854775807)", "QualityLevels(1)/Fragments(audio=9223372036854775808)",
		"QualityLevels(315647)/Fragments(text=0)", "QualityLevels(315647)/Fragments(video=01)",
		"QualityLevels(315647)/Fragments(video=1)x", "QualityLevels(0)/Fragments(video=1)",
		"QualityLevels(1)/FragmentInfo(video=1)", "Manifest", "",
		"QualityLevels(1)/Fragments(video=1)/Fragments(video=2)", "QualityLevels(1)/Fragments(video=1=2)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		br, typ, start, err := ParseFragmentPath(p)
		if err != nil {
			if !errors.Is(err, ErrNoFragment) {
				t.Fatalf("ParseFragmentPath(%q): %v", p, err)
			}
			return
		}
		if br <= 0 || typ != TypeVideo && typ != TypeAudio || start > 1<<63-1 {
			t.Fatalf("ParseFragmentPath(%q) = %d, %q, %d", p, br, typ, start)
		}
		if canon := fmt.Sprintf("QualityLevels(%d)/Fragments(%s=%d)", br, typ, start); canon != p {
			t.Fatalf("ParseFragmentPath(%q) = %d, %q, %d, whose path is %q", p, br, typ, start, canon)
		}
	})
}
