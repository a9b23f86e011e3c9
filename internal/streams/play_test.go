package streams

import (
	"strings"
	"testing"
)

func TestChoose(t *testing.T) {
	const (
		chrome  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"
		safari  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
		iphone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
		avplay  = "AppleCoreMedia/1.0.0.21F79 (iPhone; U; CPU OS 17_5 like Mac OS X; en_us)"
		curl    = "curl/7.88.1"
		browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	)
	for _, tc := range []struct {
		name, format, accept, ua, want string
		ok                             bool
	}{
		{"explicit wins", "dash", "application/vnd.apple.mpegurl", iphone, "dash", true},
		{"explicit mp4", "mp4", browser, chrome, "mp4", true},
		{"unknown explicit", "flv", "", "", "flv", false},
		{"accepts hls", "", "application/vnd.apple.mpegurl", "", "hls", true},
		{"accepts dash", "", "application/dash+xml,video/mp4", "", "dash", true},
		{"accepts smooth", "", "application/vnd.ms-sstr+xml", "", "smooth", true},
		{"safari native hls", "", browser, safari, "hls", true},
		{"iphone native hls", "", browser, iphone, "hls", true},
		{"avplayer", "", "*/*", avplay, "hls", true},
		{"chrome gets the player page", "", browser, chrome, "page", true},
		{"curl downloads mp4", "", "*/*", curl, "mp4", true},
		{"no headers", "", "", "", "mp4", true},
	} {
		got, ok := Choose(tc.format, tc.accept, tc.ua)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Choose = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseClip(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"1.5-4", true}, {"0-", true}, {"3-", true}, {"abc", false}, {"4-2", false}, {"-1-2", false}, {"x-2", false}, {"1-NaN", false},
		{strings.Repeat("0", 31) + "1-2", true}, {strings.Repeat("0", 32) + "1-", false}, {"1-" + strings.Repeat("0", 32) + "2", false}} {
		if _, _, err := parseClip(tc.in); (err == nil) != tc.ok {
			t.Errorf("parseClip(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
