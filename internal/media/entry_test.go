package media

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestParseAVCConfig(t *testing.T) {
	sps, pps := []byte{0x67, 0x64, 0x00, 0x0d, 0xac}, []byte{0x68, 0xeb}
	// version 1, profile, compatibility, level, 4-byte lengths, one SPS.
	head := []byte{1, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0, 5}
	rec := append(append(append(append(head, sps...), 2, 0, 2), pps...), 0, 2, 0x68, 0x01)
	c, err := ParseAVCConfig(rec)
	if err != nil || c.Version != 1 || c.LengthSize != 4 || len(c.SPS) != 1 || len(c.PPS) != 2 {
		t.Fatalf("ParseAVCConfig = %+v, %v", c, err)
	}
	if got, want := hex.EncodeToString(c.AnnexB()), "000000016764000dac0000000168eb000000016801"; got != want {
		t.Errorf("AnnexB = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name, want string
		rec        []byte
	}{
		{"short", "too short", rec[:6]},
		{"SPS cut", "truncated", rec[:10]},
		{"no PPS count", "truncated", rec[:13]},
		{"empty SPS", "empty SPS", []byte{1, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0, 0, 0}},
	} {
		if _, err := ParseAVCConfig(tc.rec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
