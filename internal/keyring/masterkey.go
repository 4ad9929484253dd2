package keyring

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadOrCreateMasterKey reads the master key file at path and returns the
// key that seals and the older keys that only open (Options.OldMasterKeys).
//
// The file holds either exactly 32 raw bytes (head -c 32 /dev/urandom), or
// one standard base64 key per line (openssl rand -base64 32): the first line
// seals, later lines are old keys kept to open what they sealed. Blank
// lines are ignored; anything else is an error.
//
// When the file does not exist it is created, with one new random key in
// base64 and mode 0600 (its directory 0700 if missing); creation is atomic,
// so nodes starting together on one host agree on the key. An existing file
// that group or others may read or write is refused. Nodes sharing a
// database need the same file: copy it to each before they start, since a
// node that creates its own will fail Open's master key check.
func LoadOrCreateMasterKey(path string) ([]byte, [][]byte, error) {
	if path == "" {
		return nil, nil, errors.New("keyring: master key file: no path given")
	}
	b, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, nil, err
		}
		b, err = readKeyFile(path)
	}
	if err != nil {
		return nil, nil, err
	}
	defer clear(b)
	keys, err := parseMasterKeys(b)
	if err != nil {
		return nil, nil, fmt.Errorf("keyring: master key file %s: %w", path, err)
	}
	return keys[0], keys[1:], nil
}

func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: master key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring: master key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("keyring: master key file %s has mode %04o: group and others must have no access (chmod 600 it)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: master key file: %w", err)
	}
	return b, nil
}

// parseMasterKeys reads the file format LoadOrCreateMasterKey documents.
// Its errors never quote the file's bytes.
func parseMasterKeys(b []byte) ([][]byte, error) {
	if len(b) == MasterKeySize {
		if printable(b) {
			// 32 random bytes are all printable once in ~10^14 files: this
			// is a password or a truncated base64 key, not a key.
			return nil, fmt.Errorf("holds %d bytes of text: want %d random bytes, or a base64 key", len(b), MasterKeySize)
		}
		return [][]byte{bytes.Clone(b)}, nil
	}
	var keys [][]byte
	for i, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		k := make([]byte, base64.StdEncoding.DecodedLen(len(line)))
		n, err := base64.StdEncoding.Decode(k, line)
		if err != nil || n != MasterKeySize {
			return nil, fmt.Errorf("line %d is not a base64-encoded %d-byte key", i+1, MasterKeySize)
		}
		keys = append(keys, k[:n])
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("holds no key: want %d raw bytes or base64 keys, one a line", MasterKeySize)
	}
	return keys, nil
}

// createKeyFile writes a new key to a temporary file and links it into
// place, so the path never holds a partial key and an existing file is
// never replaced.
func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keyring: create master key file: %w", err)
	}
	key := make([]byte, MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("keyring: create master key: %w", err)
	}
	text := []byte(base64.StdEncoding.EncodeToString(key) + "\n")
	clear(key)
	defer clear(text)

	tmp, err := os.CreateTemp(dir, ".master-key-*")
	if err != nil {
		return fmt.Errorf("keyring: create master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: create master key file: %w", err)
	}
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: write master key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("keyring: write master key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("keyring: write master key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process made it first; use theirs
		}
		return fmt.Errorf("keyring: create master key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable
		d.Close()
	}
	return nil
}

func printable(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}
