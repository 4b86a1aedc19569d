package molteniron

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
)

func TestEncodeJSON(t *testing.T) {
	v, err := Decode([]byte(`{"b": 1, "a": [1.5, 1e20, 1E-7, 100.0, true, null, "x\"y\\z\n\u00e9\ud83d\ude00\u007f"], "b": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	// Python: json.dumps(json.loads(...)); a repeated key keeps its place.
	want := `{"b": 2, "a": [1.5, 1e+20, 1e-07, 100.0, true, null, "x\"y\\z\n\u00e9\ud83d\ude00\u007f"]}`
	if got := string(EncodeJSON(v)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRepr(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{Object{{"a", "it's"}, {"b", json.Number("3")}, {"c", nil}, {"d", []any{true, false}}}, `{'a': "it's", 'b': 3, 'c': None, 'd': [True, False]}`},
		{"both ' and \"", `'both \' and "'`},
		{"tab\tnl\n\x01é", `'tab\tnl\n\x01é'`},
		{json.Number("0.1"), "0.1"},
		{json.Number("1e16"), "1e+16"},
		{json.Number("123456789012345678901234567890"), "123456789012345678901234567890"},
	} {
		if got := Repr(c.in); got != c.want {
			t.Errorf("Repr(%#v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestTimedelta(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0:00:00"},
		{5*time.Second + 123456*time.Microsecond, "0:00:05.123456"},
		{26*time.Hour + 3*time.Minute, "1 day, 2:03:00"},
		{50 * time.Hour, "2 days, 2:00:00"},
		{-time.Second, "-1 day, 23:59:59"},
	} {
		if got := timedelta(c.d); got != c.want {
			t.Errorf("timedelta(%s) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestPythonJSONError(t *testing.T) {
	for in, want := range map[string]string{
		"":           "Expecting value: line 1 column 1 (char 0)",
		"nope":       "Expecting value: line 1 column 1 (char 0)",
		"  \n x":     "Expecting value: line 2 column 2 (char 4)",
		`{"a": 1}x`:  "Extra data: line 1 column 9 (char 8)",
		`{"a": 1} ]`: "Extra data: line 1 column 10 (char 9)",
		`{"a": 1`:    "Unterminated JSON: line 1 column 8 (char 7)",
	} {
		_, err := Decode([]byte(in))
		if err == nil {
			t.Errorf("%q decoded", in)
			continue
		}
		if got := pythonJSONError([]byte(in), err); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestMapName(t *testing.T) {
	for in, want := range map[string]string{
		"node-1.lab:a":          "node-1.lab:a",
		"my owner":              "my-owner-",
		"":                      "mi-",
		"/x":                    "x-",
		strings.Repeat("a", 70): strings.Repeat("a", 54) + "-",
	} {
		got := mapName(in)
		if err := ironpool.ValidateName("n", got); err != nil {
			t.Errorf("mapName(%q) = %q: %v", in, got, err)
		}
		if strings.HasSuffix(want, "-") && (!strings.HasPrefix(got, want) || len(got) != len(want)+8) || !strings.HasSuffix(want, "-") && got != want {
			t.Errorf("mapName(%q) = %q, want %q…", in, got, want)
		}
	}
	if mapName("a b") == mapName("a/b") {
		t.Error("two names map to one")
	}
	if MapPool("Default") != "default" || MapPool("default") != "default" {
		t.Error("pools fold case")
	}
}

// TestBlobRoundTrip: every value type survives being spread over node
// attributes and fields and read back, in order.
func TestBlobRoundTrip(t *testing.T) {
	in := `{"cpus": "8", "ipmi_password": 1234, "port_hwaddr": "AA-BB-CC-DD-EE-FF", "cpu_arch": "Bad Arch", "ram_mb": -1, ` +
		`"disk_gb": 2.5, "ipmi_user": null, "x": {"y": [1, "z"]}, "s": ""}`
	v, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	n := &ironpool.Node{Name: "n", BMC: ironpool.BMC{Address: "ipmi://h"}, Fields: map[string]string{}}
	if err := setBlob(n, v.(Object)); err != nil {
		t.Fatal(err)
	}
	if err := n.Validate(""); err != nil {
		t.Fatalf("node invalid: %v", err)
	}
	if n.CPUs != 8 || n.MACs[0] != "aa:bb:cc:dd:ee:ff" || n.CPUArch != "" || n.BMC.Password != "1234" {
		t.Errorf("node %+v", n)
	}
	if got := string(EncodeJSON(Blob(n))); got != in {
		t.Errorf("got  %s\nwant %s", got, in)
	}
}
