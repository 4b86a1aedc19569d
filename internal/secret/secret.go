// Package secret encrypts secrets at rest, chiefly the BMC passwords stored
// with each node, so that a copy of the database alone does not hand out the
// keys to every server's management controller.
//
// A sealed secret is a short string that fits in an ordinary text column:
//
//	v1:<keyid>:<base64url-raw(nonce || ciphertext)>
//
// It is encrypted with AES-256-GCM under a fresh random 12-byte nonce. The
// caller's associated data (for example "nodes/<uuid>/bmc_password") ties the
// ciphertext to the row and column it was written to, so a value copied into
// another row or column does not open. The format version and the key id are
// part of the associated data as well, so neither the version nor the key id
// tag can be rewritten without detection.
//
// A Keyring holds one current key, used to seal, and any number of old keys
// that are still accepted when opening. Rotating keys is therefore a two-step
// affair that survives interruption: start with the new key as current and the
// old one as old, reseal every value for which NeedsReseal reports true, and
// only then drop the old key.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/ironpool/ironpool"
)

// KeySize is the length of a key in bytes; AES-256 needs exactly 32.
const KeySize = 32

const (
	// version is the first field of every sealed value, so that a future
	// format can be told apart from this one without guessing.
	version = "v1"
	// keyIDLen is the length of a key id in hex characters (8 bytes).
	keyIDLen = 16
	// nonceSize is the standard GCM nonce size; random 96-bit nonces are
	// safe for far more messages than a node inventory will ever seal.
	nonceSize = 12
	// aadPrefix names the format in the associated data so a ciphertext
	// produced by some other use of the same key can never open here.
	aadPrefix = "ironpool/secret/" + version + "\x00"
)

// payloadEncoding is URL-safe so sealed values survive URLs and shells
// unquoted, unpadded because the length is implied, and strict so that every
// payload has exactly one accepted spelling.
var payloadEncoding = base64.RawURLEncoding.Strict()

// Keyring seals with its current key and opens with the current or any old
// key. It is immutable after New and safe for concurrent use.
type Keyring struct {
	current string
	keys    map[string]cipher.AEAD
}

// The Keyring is what the store uses to keep BMC passwords encrypted.
var _ ironpool.Sealer = (*Keyring)(nil)

// New returns a keyring that seals with current and still opens values
// sealed with any of old, so that a key rotation can be finished later. Each
// key must be exactly KeySize bytes. The keys are copied by the cipher, so
// the caller may reuse its slices.
func New(current []byte, old ...[]byte) (*Keyring, error) {
	k := &Keyring{keys: make(map[string]cipher.AEAD, 1+len(old))}
	id, err := k.add(current, "current secret key")
	if err != nil {
		return nil, err
	}
	k.current = id
	for i, key := range old {
		if _, err := k.add(key, fmt.Sprintf("old secret key %d", i+1)); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// add registers key under its id. Listing the same key twice (say, an old
// key that is also current) is harmless and accepted, because an operator
// may well leave the old key configured for a while after a rotation.
func (k *Keyring) add(key []byte, what string) (string, error) {
	if len(key) != KeySize {
		return "", ironpool.Errorf(ironpool.EINVALID,
			"%s is %d bytes; it must be exactly %d bytes (AES-256)", what, len(key), KeySize)
	}
	id := keyID(key)
	if _, ok := k.keys[id]; ok {
		return id, nil
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", ironpool.Errorf(ironpool.EINTERNAL, "%s: cannot set up AES: %v", what, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return "", ironpool.Errorf(ironpool.EINTERNAL, "%s: cannot set up GCM: %v", what, err)
	}
	k.keys[id] = aead
	return id, nil
}

// keyID names a key without revealing it: the first 8 bytes of its SHA-256,
// in hex. That is enough to tell a handful of keys apart and lets operators
// see which key a value is sealed with.
func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:keyIDLen/2])
}

// KeyID returns the id of the key Seal uses now.
func (k *Keyring) KeyID() string { return k.current }

// String describes the keyring by key ids only, so that logging or printing
// a Keyring by accident can never leak key material.
func (k *Keyring) String() string {
	return fmt.Sprintf("secret.Keyring{current: %s, keys: %d}", k.current, len(k.keys))
}

// GoString keeps %#v as safe as %v; see String.
func (k *Keyring) GoString() string { return k.String() }

// fullAAD builds the associated data actually authenticated by GCM: the
// format, the key id and the caller's aad. The key id has a fixed length, so
// the concatenation is unambiguous.
func fullAAD(id, aad string) []byte {
	return []byte(aadPrefix + id + "\x00" + aad)
}

// Seal encrypts plaintext under the current key, bound to aad. An empty
// plaintext seals to "" so that "no secret set" stays recognisable (and
// cheap) in the database.
func (k *Keyring) Seal(plaintext, aad string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	aead := k.keys[k.current]
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", ironpool.Errorf(ironpool.EINTERNAL, "cannot read random nonce: %v", err)
	}
	buf = aead.Seal(buf, buf[:nonceSize], []byte(plaintext), fullAAD(k.current, aad))
	return version + ":" + k.current + ":" + payloadEncoding.EncodeToString(buf), nil
}

// Open decrypts a value produced by Seal with the same aad, using whichever
// key of the ring it was sealed with. "" opens to "" (no secret set).
func (k *Keyring) Open(ciphertext, aad string) (string, error) {
	if ciphertext == "" {
		return "", nil
	}
	id, payload, err := parse(ciphertext)
	if err != nil {
		return "", err
	}
	aead, ok := k.keys[id]
	if !ok {
		return "", ironpool.Errorf(ironpool.EINTERNAL, "secret sealed with unknown key %s", id).
			WithHint("configure the key with this id as an old key, or set the secret again")
	}
	plain, err := aead.Open(nil, payload[:nonceSize], payload[nonceSize:], fullAAD(id, aad))
	if err != nil {
		return "", ironpool.Errorf(ironpool.EINTERNAL, "secret does not open: wrong key or tampered data")
	}
	return string(plain), nil
}

// KeyIDOf returns the id of the key ciphertext was sealed with, without
// opening it, so a rotation can find values still sealed under an old key.
// It returns "" for "" (no secret set).
func (k *Keyring) KeyIDOf(ciphertext string) (string, error) {
	if ciphertext == "" {
		return "", nil
	}
	id, _, err := parse(ciphertext)
	return id, err
}

// NeedsReseal reports whether ciphertext is sealed under a key other than
// the current one and should be rewritten before that key is retired. It is
// false for "" and for malformed values, which resealing cannot repair; use
// KeyIDOf or Open to report those.
func (k *Keyring) NeedsReseal(ciphertext string) bool {
	id, err := k.KeyIDOf(ciphertext)
	return err == nil && id != "" && id != k.current
}

// parse splits a sealed value into its key id and decoded payload. Its
// errors describe what is wrong without echoing the input, because a
// malformed value might be a plaintext password stored by mistake.
func parse(s string) (id string, payload []byte, err error) {
	rest, ok := strings.CutPrefix(s, version+":")
	if !ok {
		return "", nil, malformed("it does not start with %q", version+":")
	}
	id, enc, ok := strings.Cut(rest, ":")
	if !ok {
		return "", nil, malformed("want %s:<keyid>:<payload>", version)
	}
	if !validKeyID(id) {
		return "", nil, malformed("the key id is not %d lowercase hex characters", keyIDLen)
	}
	payload, err = payloadEncoding.DecodeString(enc)
	// The decoder skips newlines, so compare the re-encoding to insist on
	// one spelling per payload; a value that changes must fail to parse.
	if err != nil || payloadEncoding.EncodeToString(payload) != enc {
		return "", nil, malformed("the payload is not unpadded URL-safe base64")
	}
	if len(payload) < nonceSize+16 {
		return "", nil, malformed("the payload is too short")
	}
	return id, payload, nil
}

func malformed(format string, args ...any) *ironpool.Error {
	return ironpool.Errorf(ironpool.EINVALID, "malformed sealed secret: "+format, args...)
}

func validKeyID(id string) bool {
	if len(id) != keyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
