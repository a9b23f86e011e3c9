package library

import "testing"

func TestParseAndFormatSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "none": 0, "unlimited": 0, "1000": 1000, "50GB": 50e9, "50 gb": 50e9, "1.5TB": 1.5e12,
		"500MiB": 500 << 20, "1kB": 1000, "2k": 2000, "3GiB": 3 << 30,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1GB", "10 parsecs", "GB", "1e400"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1 kB", 1500: "1.5 kB", 50e9: "50 GB", 2e15: "2 PB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
