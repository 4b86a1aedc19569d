package service

import (
	"strings"
	"testing"
)

// TestNormalizeChecksum: a deploy's checksum is ALGO:HEX or plain hex of a
// digest's length; anything else (`--checksum abc`) is refused before
// anything is sent to Ironic.
func TestNormalizeChecksum(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for _, tc := range []struct{ in, want, err string }{
		{"", "", ""},
		{sha, "sha256:" + sha, ""},
		{strings.ToUpper(sha), "sha256:" + sha, ""},
		{strings.Repeat("0", 32), strings.Repeat("0", 32), ""},
		{"sha512:" + strings.Repeat("f", 128), "sha512:" + strings.Repeat("f", 128), ""},
		{"SHA256:" + sha, "sha256:" + sha, ""},
		{"abc", "", "3 hex digits"},
		{"sha256:" + sha[:10], "", "64 hex digits, not 10"},
		{"crc32:deadbeef", "", `"crc32" is not one of`},
		{"sha256:zz" + sha[2:], "", "not hex"},
	} {
		got, err := normalizeChecksum(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("normalizeChecksum(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "checksum")):
			t.Errorf("normalizeChecksum(%q) = %q, %v; want an error on checksum mentioning %q", tc.in, got, err, tc.err)
		}
	}
}
