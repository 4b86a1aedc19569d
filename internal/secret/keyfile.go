package secret

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ironpool/ironpool"
)

// EnvKey is the environment variable that may carry the key instead of a
// key file, in either encoding ParseKey accepts.
const EnvKey = "IRONPOOL_SECRET_KEY"

// maxKeyFileSize bounds how much of a key file is read, so that pointing
// the server at a wrong, large file fails fast instead of eating memory.
const maxKeyFileSize = 4096

// GenerateKey returns a new random key from the operating system's CSPRNG.
func GenerateKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, ironpool.Errorf(ironpool.EINTERNAL, "cannot generate secret key: %v", err)
	}
	return key, nil
}

// ParseKey decodes a key written as 64 hex characters or as 44 characters of
// standard padded base64, ignoring surrounding whitespace. Both encodings are
// accepted because operators produce keys with either `openssl rand -hex 32`
// or `openssl rand -base64 32`. Its errors never repeat the input, which is
// probably a key with a typo in it.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var (
		key []byte
		err error
	)
	switch len(s) {
	case 2 * KeySize:
		key, err = hex.DecodeString(s)
		if err != nil {
			return nil, ironpool.Errorf(ironpool.EINVALID,
				"secret key has 64 characters but is not valid hex")
		}
	case base64.StdEncoding.EncodedLen(KeySize):
		key, err = base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(key) != KeySize {
			return nil, ironpool.Errorf(ironpool.EINVALID,
				"secret key has 44 characters but is not valid base64 of %d bytes", KeySize)
		}
	default:
		return nil, ironpool.Errorf(ironpool.EINVALID,
			"secret key has %d characters; want %d bytes as 64 hex or 44 base64 characters",
			len(s), KeySize).
			WithHint("generate one with: openssl rand -hex 32")
	}
	return key, nil
}

// LoadKeyFile reads a key from path in either encoding ParseKey accepts. It
// refuses a file that group or others may access, because a key everyone on
// the host can read protects nothing; the check is made on the opened file,
// so the file cannot be swapped between check and read.
func LoadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ironpool.Errorf(ironpool.ENOTFOUND, "secret key file %s does not exist", path)
		}
		return nil, ironpool.Errorf(ironpool.EINTERNAL, "cannot open secret key file: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, ironpool.Errorf(ironpool.EINTERNAL, "cannot stat secret key file: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, ironpool.Errorf(ironpool.EINVALID, "secret key file %s is not a regular file", path)
	}
	// Windows has no group/other permission bits to check.
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, ironpool.Errorf(ironpool.EINVALID,
			"secret key file %s has mode %04o and is readable by group or others", path, perm).
			WithHint("run: chmod 600 " + path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, ironpool.Errorf(ironpool.EINTERNAL, "cannot read secret key file: %v", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, ironpool.Errorf(ironpool.EINVALID,
			"secret key file %s is larger than %d bytes; it does not hold a key", path, maxKeyFileSize)
	}
	key, err := ParseKey(string(data))
	if err != nil {
		var e *ironpool.Error
		if errors.As(err, &e) {
			return nil, ironpool.Errorf(e.Code, "secret key file %s: %s", path, e.Message).WithHint(e.Hint)
		}
		return nil, err
	}
	return key, nil
}

// CreateKeyFile writes a new random key to path as hex, readable by its
// owner only, and returns it. It never overwrites an existing file: losing
// the old key would make every secret sealed with it unreadable. The file and
// its directory entry are synced before returning, so a key that sealed
// anything survives a crash.
func CreateKeyFile(path string) ([]byte, error) {
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	if err := WriteKeyFile(path, key); err != nil {
		return nil, err
	}
	return key, nil
}

// WriteKeyFile writes key to a new file at path as CreateKeyFile does: hex,
// mode 0600, never over an existing file, synced. The server uses it to
// write a key it generated only after checking the database needs no other.
func WriteKeyFile(path string, key []byte) error {
	if len(key) != KeySize {
		return ironpool.Errorf(ironpool.EINVALID, "secret key is %d bytes; want %d", len(key), KeySize)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ironpool.Errorf(ironpool.ECONFLICT,
				"secret key file %s already exists; refusing to overwrite it", path)
		}
		return ironpool.Errorf(ironpool.EINTERNAL, "cannot create secret key file: %v", err)
	}
	data := []byte(hex.EncodeToString(key) + "\n")
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The file is ours (O_EXCL) and incomplete; leaving it would make
		// the next start fail on a truncated key instead of retrying.
		_ = os.Remove(path)
		return ironpool.Errorf(ironpool.EINTERNAL, "cannot write secret key file: %v", err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// syncDir makes a newly created directory entry durable. It is best effort:
// some platforms and file systems cannot sync directories, and the key file
// itself has already been written and synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
