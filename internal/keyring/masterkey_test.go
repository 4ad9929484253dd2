package keyring

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadOrCreateMasterKeyCreates(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	key, old, err := LoadOrCreateMasterKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != MasterKeySize || len(old) != 0 {
		t.Fatalf("key of %d bytes, %d old keys", len(key), len(old))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("created with mode %04o", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Fatalf("directory created with mode %04o", di.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if string(b) != base64.StdEncoding.EncodeToString(key)+"\n" {
		t.Fatal("file is not the key in base64 with a newline")
	}
	again, _, err := LoadOrCreateMasterKey(path)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second load gave another key (%v)", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".master-key-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

// TestLoadOrCreateMasterKeyConcurrent checks that processes creating the
// file together end up with one key.
func TestLoadOrCreateMasterKeyConcurrent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "master.key")
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, _, err := LoadOrCreateMasterKey(path)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent creators got different keys")
		}
	}
}

func TestLoadMasterKeyFormats(t *testing.T) {
	t.Parallel()
	k1, k2 := newMasterKey32(t), newMasterKey32(t)
	k1[0], k1[1] = 0x00, 0xff // raw keys that are surely not text
	b64 := func(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    [][]byte
		wantErr string
	}{
		{"raw", k1, 0o600, [][]byte{k1}, ""},
		{"base64", []byte(b64(k1)), 0o600, [][]byte{k1}, ""},
		{"base64 with blank lines and CRLF", []byte("\n" + b64(k1) + "\r\n\n"), 0o400, [][]byte{k1}, ""},
		{"current and old", []byte(b64(k2) + "\n" + b64(k1) + "\n"), 0o600, [][]byte{k2, k1}, ""},
		{"readable by group", []byte(b64(k1)), 0o640, nil, "group and others must have no access"},
		{"readable by others", []byte(b64(k1)), 0o604, nil, "chmod 600"},
		{"empty", nil, 0o600, nil, "holds no key"},
		{"short key", []byte(base64.StdEncoding.EncodeToString(k1[:16])), 0o600, nil, "line 1 is not a base64-encoded 32-byte key"},
		{"not base64", []byte(b64(k1) + "\nnot a key!\n"), 0o600, nil, "line 2 is not"},
		{"32 bytes of text", []byte("correct horse battery staple 123"), 0o600, nil, "bytes of text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(path, tt.content, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			key, old, err := LoadOrCreateMasterKey(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want %q", err, tt.wantErr)
				}
				if len(tt.content) > 0 && strings.Contains(err.Error(), b64(k1)) {
					t.Fatal("error quotes the key")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := append([][]byte{key}, old...)
			if len(got) != len(tt.want) {
				t.Fatalf("%d keys; want %d", len(got), len(tt.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Fatalf("key %d differs", i)
				}
			}
		})
	}
}

func TestLoadMasterKeyRefusesDirectory(t *testing.T) {
	t.Parallel()
	if _, _, err := LoadOrCreateMasterKey(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("error %v", err)
	}
	if _, _, err := LoadOrCreateMasterKey(""); err == nil {
		t.Fatal("empty path accepted")
	}
}
