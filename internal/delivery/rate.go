package delivery

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseRate parses a data rate and returns it in bits per second: a
// non-negative number, optionally followed (spaces allowed) by a unit made
// of
//
//   - an optional prefix: k, M, G, T (powers of 1000, either case) or Ki,
//     Mi, Gi, Ti (powers of 1024);
//   - bits: "bit", "bits" or "b" (lower case), or bytes: "B", "byte" or
//     "bytes" (8 bits);
//   - an optional "/s" or "ps".
//
// For example "1Gbit", "500Mbit", "100MB/s", "2.5 Gbit/s", "800kbps",
// "10MiB/s", "1e6". A number alone is in bits per second; "0" is 0
// (unlimited, for a budget). The result is rounded to whole bits.
func ParseRate(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	// The number: digits, point, exponent (no unit starts with e or E).
	i := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune("0123456789.eE+-", r) })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("delivery: rate %q: %q is not a number", in, num)
	}
	if v < 0 {
		return 0, fmt.Errorf("delivery: rate %q is negative", in)
	}
	mult, err := rateUnit(unit)
	if err != nil {
		return 0, fmt.Errorf("delivery: rate %q: %w", in, err)
	}
	r := math.Round(v * mult)
	if r >= math.MaxInt64 {
		return 0, fmt.Errorf("delivery: rate %q is too large", in)
	}
	return int64(r), nil
}

// rateUnit returns the bits per second of one unit.
func rateUnit(u string) (float64, error) {
	orig := u
	if rest, ok := strings.CutSuffix(u, "/s"); ok {
		u = rest
	} else if rest, ok := strings.CutSuffix(u, "ps"); ok && rest != "" {
		u = rest
	}
	if u == "" {
		if orig != "" {
			return 0, fmt.Errorf("unit %q names no bits or bytes", orig)
		}
		return 1, nil
	}
	mult := 1.0
	if len(u) > 1 || u == "k" || u == "K" || u == "M" || u == "G" || u == "T" {
		p := 0.0
		switch u[0] {
		case 'k', 'K':
			p = 1
		case 'm', 'M':
			p = 2
		case 'g', 'G':
			p = 3
		case 't', 'T':
			p = 4
		}
		if p > 0 {
			u = u[1:]
			if rest, ok := strings.CutPrefix(u, "i"); ok {
				mult, u = math.Pow(1024, p), rest
			} else {
				mult = math.Pow(1000, p)
			}
		}
	}
	switch u {
	case "b", "bit", "bits":
		return mult, nil
	case "B", "byte", "bytes", "Byte", "Bytes":
		return mult * 8, nil
	case "":
		return 0, fmt.Errorf("unit %q: say bits (b, bit) or bytes (B)", orig)
	}
	return 0, fmt.Errorf("unknown unit %q (use for example bit, kbit, Mbit, Gbit, B, kB, MB, MiB, with an optional /s)", orig)
}

// FormatRate formats a rate in bits per second with a decimal prefix, for
// example "40 Mbit/s"; "unlimited" for math.MaxInt64.
func FormatRate(bits int64) string {
	if bits == math.MaxInt64 {
		return "unlimited"
	}
	v, unit := float64(bits), "bit/s"
	for _, u := range []string{"kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"} {
		if math.Abs(v) < 1000 {
			break
		}
		v, unit = v/1000, u
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + " " + unit
}
