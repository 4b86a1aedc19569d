package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ironpool/ironpool"
)

const (
	testAAD   = "nodes/6f1c2a9e-0000-4000-8000-000000000001/bmc_password"
	testPlain = "correct horse battery staple"
)

// testKey returns a fixed key so that failures are reproducible and the
// fuzz target sees the same key in every worker process.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustRing(t testing.TB, current []byte, old ...[]byte) *Keyring {
	t.Helper()
	k, err := New(current, old...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return k
}

func mustSeal(t testing.TB, k *Keyring, plain, aad string) string {
	t.Helper()
	ct, err := k.Seal(plain, aad)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return ct
}

// wantCode fails unless err is an *ironpool.Error with the given code.
func wantCode(t *testing.T, err error, code string) *ironpool.Error {
	t.Helper()
	var e *ironpool.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *ironpool.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("error %q has code %q, want %q", e, e.Code, code)
	}
	return e
}

// splitSealed returns the key id and decoded payload of a sealed value.
func splitSealed(t *testing.T, ct string) (string, []byte) {
	t.Helper()
	parts := strings.Split(ct, ":")
	if len(parts) != 3 || parts[0] != "v1" {
		t.Fatalf("sealed value %q is not v1:<keyid>:<payload>", ct)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	return parts[1], payload
}

func joinSealed(id string, payload []byte) string {
	return "v1:" + id + ":" + base64.RawURLEncoding.EncodeToString(payload)
}

func TestRoundTrip(t *testing.T) {
	k := mustRing(t, testKey(1))
	for _, plain := range []string{"x", testPlain, "pässwörd\x00with nul", strings.Repeat("p", 10000)} {
		ct := mustSeal(t, k, plain, testAAD)
		got, err := k.Open(ct, testAAD)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got != plain {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
	}
}

func TestFormat(t *testing.T) {
	key := testKey(1)
	k := mustRing(t, key)
	// The key id is documented as the first 8 bytes of SHA-256 of the key;
	// this value is fixed so that a change to the derivation is noticed.
	const wantID = "72cd6e8422c407fb"
	if k.KeyID() != wantID {
		t.Fatalf("KeyID = %s, want %s", k.KeyID(), wantID)
	}
	ct := mustSeal(t, k, testPlain, testAAD)
	id, payload := splitSealed(t, ct)
	if id != wantID {
		t.Fatalf("key id tag = %s, want %s", id, wantID)
	}
	if want := 12 + len(testPlain) + 16; len(payload) != want {
		t.Fatalf("payload is %d bytes, want nonce+ciphertext+tag = %d", len(payload), want)
	}
}

func TestEmptyMeansNoSecret(t *testing.T) {
	k := mustRing(t, testKey(1))
	ct, err := k.Seal("", testAAD)
	if err != nil || ct != "" {
		t.Fatalf(`Seal("") = %q, %v; want "", nil`, ct, err)
	}
	pt, err := k.Open("", testAAD)
	if err != nil || pt != "" {
		t.Fatalf(`Open("") = %q, %v; want "", nil`, pt, err)
	}
	if k.NeedsReseal("") {
		t.Fatal(`NeedsReseal("") = true`)
	}
}

func TestCiphertextHidesPlaintext(t *testing.T) {
	k := mustRing(t, testKey(1))
	ct := mustSeal(t, k, testPlain, testAAD)
	_, payload := splitSealed(t, ct)
	if strings.Contains(ct, testPlain) || bytes.Contains(payload, []byte(testPlain)) {
		t.Fatalf("sealed value %q contains the plaintext", ct)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		if strings.Contains(ct, enc.EncodeToString([]byte(testPlain))[:20]) {
			t.Fatalf("sealed value %q contains the plaintext in base64", ct)
		}
	}
}

func TestSealsDiffer(t *testing.T) {
	k := mustRing(t, testKey(1))
	a := mustSeal(t, k, testPlain, testAAD)
	b := mustSeal(t, k, testPlain, testAAD)
	if a == b {
		t.Fatalf("two seals of the same plaintext are identical: %q", a)
	}
	_, pa := splitSealed(t, a)
	_, pb := splitSealed(t, b)
	if bytes.Equal(pa[:12], pb[:12]) {
		t.Fatal("two seals reused the same nonce")
	}
}

func TestOpenWrongAAD(t *testing.T) {
	k := mustRing(t, testKey(1))
	ct := mustSeal(t, k, testPlain, testAAD)
	for _, aad := range []string{
		"",
		"nodes/6f1c2a9e-0000-4000-8000-000000000002/bmc_password", // another row
		"nodes/6f1c2a9e-0000-4000-8000-000000000001/bmc_username", // another column
		testAAD + "x",
	} {
		pt, err := k.Open(ct, aad)
		if err == nil {
			t.Fatalf("Open with aad %q succeeded (%q)", aad, pt)
		}
		e := wantCode(t, err, ironpool.EINTERNAL)
		if e.Message != "secret does not open: wrong key or tampered data" {
			t.Fatalf("message = %q", e.Message)
		}
	}
}

func TestTamperedPayload(t *testing.T) {
	k := mustRing(t, testKey(1))
	ct := mustSeal(t, k, testPlain, testAAD)
	id, payload := splitSealed(t, ct)
	for i := range payload {
		for _, bit := range []byte{0x01, 0x80} {
			p := bytes.Clone(payload)
			p[i] ^= bit
			if pt, err := k.Open(joinSealed(id, p), testAAD); err == nil {
				t.Fatalf("flipping bit %#x of payload byte %d still opened (%q)", bit, i, pt)
			}
		}
	}
	// Truncating or extending the payload must fail as well.
	for _, p := range [][]byte{payload[:len(payload)-1], append(bytes.Clone(payload), 0)} {
		if _, err := k.Open(joinSealed(id, p), testAAD); err == nil {
			t.Fatalf("payload of %d bytes instead of %d still opened", len(p), len(payload))
		}
	}
}

func TestNonCanonicalText(t *testing.T) {
	k := mustRing(t, testKey(1))
	ct := mustSeal(t, k, testPlain, testAAD)
	// Each of these decodes to the same bytes with a lenient decoder; a
	// sealed value must have one spelling, so they are rejected.
	for _, bad := range []string{
		ct[:20] + "\n" + ct[20:],
		ct + "=",
		" " + ct,
		strings.Replace(ct, "v1:", "V1:", 1),
	} {
		_, err := k.Open(bad, testAAD)
		wantCode(t, err, ironpool.EINVALID)
	}
}

func TestSwappedKeyIDTag(t *testing.T) {
	a, b := testKey(1), testKey(2)
	ring := mustRing(t, a, b)
	ct := mustSeal(t, ring, testPlain, testAAD)
	_, payload := splitSealed(t, ct)
	if _, err := ring.Open(joinSealed(keyID(b), payload), testAAD); err == nil {
		t.Fatal("sealed value relabelled with another key's id still opened")
	}

	// A relabelled tag must fail even if the key behind it would decrypt:
	// give the same AEAD a second id, which only binding the id into the
	// associated data can detect.
	const alias = "0123456789abcdef"
	ring.keys[alias] = ring.keys[ring.current]
	if _, err := ring.Open(joinSealed(alias, payload), testAAD); err == nil {
		t.Fatal("key id tag is not authenticated: relabelled value opened under the same key")
	}
	if _, err := ring.Open(ct, testAAD); err != nil {
		t.Fatalf("original still opens: %v", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	before := mustRing(t, oldKey)
	oldCT := mustSeal(t, before, testPlain, testAAD)
	if before.NeedsReseal(oldCT) {
		t.Fatal("NeedsReseal true for a value sealed with the current key")
	}

	after := mustRing(t, newKey, oldKey)
	if after.KeyID() != keyID(newKey) {
		t.Fatalf("KeyID = %s, want the new key's %s", after.KeyID(), keyID(newKey))
	}
	got, err := after.Open(oldCT, testAAD)
	if err != nil || got != testPlain {
		t.Fatalf("Open old value with rotated ring = %q, %v", got, err)
	}
	if !after.NeedsReseal(oldCT) {
		t.Fatal("NeedsReseal false for a value sealed with an old key")
	}
	if id, err := after.KeyIDOf(oldCT); err != nil || id != keyID(oldKey) {
		t.Fatalf("KeyIDOf old value = %s, %v; want %s", id, err, keyID(oldKey))
	}

	newCT := mustSeal(t, after, testPlain, testAAD)
	if id, err := after.KeyIDOf(newCT); err != nil || id != keyID(newKey) {
		t.Fatalf("Seal used key %s (%v), want the new key %s", id, err, keyID(newKey))
	}
	if after.NeedsReseal(newCT) {
		t.Fatal("NeedsReseal true for a value sealed with the current key")
	}
	// Only the new key opens the new value: the old ring must not.
	if _, err := before.Open(newCT, testAAD); err == nil {
		t.Fatal("ring without the new key opened a value sealed with it")
	}

	// Once the rotation is done and the old key dropped, old values fail
	// with a message that names the missing key.
	done := mustRing(t, newKey)
	_, err = done.Open(oldCT, testAAD)
	e := wantCode(t, err, ironpool.EINTERNAL)
	if want := "secret sealed with unknown key " + keyID(oldKey); e.Message != want {
		t.Fatalf("message = %q, want %q", e.Message, want)
	}
}

func TestNewRejectsBadKeys(t *testing.T) {
	good := testKey(1)
	for _, tc := range []struct {
		name string
		cur  []byte
		old  [][]byte
		want string
	}{
		{"short current", good[:31], nil, "current secret key is 31 bytes"},
		{"long current", append(bytes.Clone(good), 0), nil, "current secret key is 33 bytes"},
		{"nil current", nil, nil, "current secret key is 0 bytes"},
		{"bad old", good, [][]byte{good, good[:16]}, "old secret key 2 is 16 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cur, tc.old...)
			e := wantCode(t, err, ironpool.EINVALID)
			if !strings.Contains(e.Message, tc.want) {
				t.Fatalf("message %q does not contain %q", e.Message, tc.want)
			}
		})
	}
	// A key listed as both current and old is fine.
	if _, err := New(good, good); err != nil {
		t.Fatalf("New(k, k): %v", err)
	}
}

func TestMalformed(t *testing.T) {
	k := mustRing(t, testKey(1))
	id := k.KeyID()
	for _, bad := range []string{
		testPlain, // a plaintext stored by mistake
		"v1",
		"v1:",
		"v1:" + id,
		"v1:" + id + ":",
		"v1:" + id + ":AAAA",
		"v2:" + id + ":" + strings.Repeat("A", 40),
		"v1:" + strings.ToUpper(id) + ":" + strings.Repeat("A", 40),
		"v1:" + id[:15] + ":" + strings.Repeat("A", 40),
		"v1:" + id + ":" + strings.Repeat("+", 40),
	} {
		_, err := k.Open(bad, testAAD)
		e := wantCode(t, err, ironpool.EINVALID)
		if strings.Contains(e.Error(), testPlain) {
			t.Fatalf("error %q echoes its input", e)
		}
		if _, err := k.KeyIDOf(bad); err == nil {
			t.Fatalf("KeyIDOf(%q) succeeded", bad)
		}
		if k.NeedsReseal(bad) {
			t.Fatalf("NeedsReseal(%q) = true", bad)
		}
	}
}

func TestKeyringStringHidesKey(t *testing.T) {
	key := testKey(0xab)
	k := mustRing(t, key)
	for _, s := range []string{k.String(), k.GoString()} {
		if !strings.Contains(s, k.KeyID()) || strings.Contains(s, hex.EncodeToString(key)) {
			t.Fatalf("String = %q", s)
		}
	}
}

func TestParseKey(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i * 7)
	}
	hexKey := hex.EncodeToString(key)
	b64Key := base64.StdEncoding.EncodeToString(key)
	for _, in := range []string{hexKey, strings.ToUpper(hexKey), b64Key, "  " + hexKey + "\n", "\t" + b64Key + "\r\n"} {
		got, err := ParseKey(in)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("ParseKey(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{
		"",
		hexKey[:62],       // 31 bytes
		hexKey + "00",     // 33 bytes
		"zz" + hexKey[2:], // 64 characters, not hex
		b64Key[:43],       // unpadded
		"!" + b64Key[1:],  // 44 characters, not base64
		base64.StdEncoding.EncodeToString(key[:31]) + "A", // wrong length
	} {
		_, err := ParseKey(in)
		e := wantCode(t, err, ironpool.EINVALID)
		if len(in) > 8 && strings.Contains(e.Error()+e.Hint, strings.TrimSpace(in)[:8]) {
			t.Fatalf("error %q repeats the key", e)
		}
	}
}

func skipWindows(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits")
	}
}

func TestCreateKeyFile(t *testing.T) {
	skipWindows(t)
	path := filepath.Join(t.TempDir(), "secret.key")
	key, err := CreateKeyFile(path)
	if err != nil {
		t.Fatalf("CreateKeyFile: %v", err)
	}
	if len(key) != KeySize {
		t.Fatalf("key is %d bytes", len(key))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(data)) != hex.EncodeToString(key) {
		t.Fatalf("key file holds %q, want the key in hex", data)
	}
	loaded, err := LoadKeyFile(path)
	if err != nil || !bytes.Equal(loaded, key) {
		t.Fatalf("LoadKeyFile = %x, %v; want %x", loaded, err, key)
	}

	// A second create must fail and leave the first key in place.
	again, err := CreateKeyFile(path)
	if err == nil {
		t.Fatalf("second CreateKeyFile succeeded with key %x", again)
	}
	wantCode(t, err, ironpool.ECONFLICT)
	if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
		t.Fatal("second CreateKeyFile changed the existing key file")
	}

	// Two keys in a row differ (the key is random).
	other, err := CreateKeyFile(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other, key) {
		t.Fatal("two created keys are identical")
	}
}

func writeKeyFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret.key")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile is subject to the umask; set the mode we mean to test.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyFile(t *testing.T) {
	skipWindows(t)
	key := testKey(0x5a)
	hexKey := hex.EncodeToString(key)
	b64Key := base64.StdEncoding.EncodeToString(key)

	for _, content := range []string{hexKey, hexKey + "\n", b64Key + "\n", "\n  " + b64Key + "  \n"} {
		got, err := LoadKeyFile(writeKeyFile(t, content, 0o600))
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("LoadKeyFile(%q) = %x, %v", content, got, err)
		}
	}
	if _, err := LoadKeyFile(writeKeyFile(t, hexKey, 0o400)); err != nil {
		t.Fatalf("read-only owner file refused: %v", err)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		path := writeKeyFile(t, hexKey, mode)
		got, err := LoadKeyFile(path)
		if err == nil {
			t.Fatalf("mode %04o accepted (key %x)", mode, got)
		}
		e := wantCode(t, err, ironpool.EINVALID)
		if !strings.Contains(e.Error()+" "+e.Hint, "chmod 600") {
			t.Fatalf("error %q (hint %q) does not tell the operator to chmod 600", e, e.Hint)
		}
	}

	for _, content := range []string{"", hexKey[:62], hexKey + "00", b64Key[:40] + "===="} {
		_, err := LoadKeyFile(writeKeyFile(t, content, 0o600))
		e := wantCode(t, err, ironpool.EINVALID)
		if len(content) > 0 && strings.Contains(e.Error()+e.Hint, content[:16]) {
			t.Fatalf("error %q repeats the key", e)
		}
	}

	_, err := LoadKeyFile(writeKeyFile(t, strings.Repeat("a", 1<<20), 0o600))
	wantCode(t, err, ironpool.EINVALID)

	_, err = LoadKeyFile(filepath.Join(t.TempDir(), "missing.key"))
	wantCode(t, err, ironpool.ENOTFOUND)

	_, err = LoadKeyFile(t.TempDir())
	wantCode(t, err, ironpool.EINVALID)
}

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != KeySize || bytes.Equal(a, b) {
		t.Fatalf("GenerateKey = %x, %x", a, b)
	}
}

// FuzzOpen checks that Open never panics whatever the database hands it,
// that its failures are coded errors, that anything that does open is bound
// to its aad, and that Seal/Open round-trip arbitrary plaintext and aad.
func FuzzOpen(f *testing.F) {
	k := mustRing(f, testKey(1), testKey(2))
	old := mustRing(f, testKey(2))
	f.Add(mustSeal(f, k, testPlain, testAAD), testAAD)
	f.Add(mustSeal(f, old, "old password", testAAD), testAAD)
	f.Add(mustSeal(f, k, "\x00\xff", ""), "")
	f.Add("", "")
	f.Add("v1:", "a")
	f.Add("v1:"+k.KeyID()+":", testAAD)
	f.Add("v1:"+k.KeyID()+":"+strings.Repeat("A", 38), testAAD)
	f.Add("v1:0000000000000000:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x")
	f.Add("v1:"+k.KeyID()+":AAAA\nAAAA", "")
	f.Add(":::", "\x00")

	f.Fuzz(func(t *testing.T, data, aad string) {
		pt, err := k.Open(data, aad)
		if err != nil {
			var e *ironpool.Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("Open error %v (%T) is not a coded *ironpool.Error", err, err)
			}
		} else if data != "" {
			if _, err := k.Open(data, aad+"x"); err == nil {
				t.Fatalf("value opened with aad %q also opens with another aad", aad)
			}
			if id, err := k.KeyIDOf(data); err != nil || k.keys[id] == nil {
				t.Fatalf("opened value has key id %q (%v) that is not in the ring", id, err)
			}
		} else if pt != "" {
			t.Fatalf(`Open("") = %q`, pt)
		}

		// Round trip: data and aad as a plaintext and its aad.
		ct, err := k.Seal(data, aad)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		got, err := k.Open(ct, aad)
		if err != nil {
			t.Fatalf("Open(Seal(x)): %v", err)
		}
		if got != data {
			t.Fatalf("round trip = %q, want %q", got, data)
		}
		if data != "" {
			if k.NeedsReseal(ct) {
				t.Fatal("fresh seal needs reseal")
			}
			if payload := ct[strings.LastIndexByte(ct, ':')+1:]; len(data) >= 16 && strings.Contains(payload, data) {
				t.Fatalf("payload %q contains the plaintext", payload)
			}
		}
	})
}
