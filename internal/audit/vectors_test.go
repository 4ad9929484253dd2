package audit

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRFC6962Vectors checks the proof verifiers against the published
// golden vectors of transparency-dev/merkle (testdata/merkle/README.md):
// every happy path verifies, every mutation is refused, and so are the
// three proofs from the empty tree, which older versions of the library
// accepted.
func TestRFC6962Vectors(t *testing.T) {
	t.Parallel()
	var inclusion, consistency int
	err := filepath.WalkDir("testdata/merkle", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var v struct {
			LeafIdx, TreeSize, Size1, Size2 uint64
			Root, LeafHash, Root1, Root2    []byte
			Proof                           [][]byte
			Desc                            string
			WantErr                         bool
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var got error
		if strings.Contains(path, "/inclusion/") {
			inclusion++
			got = VerifyInclusion(v.LeafIdx, v.TreeSize, v.LeafHash, v.Proof, v.Root)
		} else {
			consistency++
			got = VerifyConsistency(v.Size1, v.Size2, v.Proof, v.Root1, v.Root2)
		}
		if (got != nil) != v.WantErr {
			t.Errorf("%s (%s): error %v, want error %v", path, v.Desc, got, v.WantErr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if inclusion+consistency != 196 {
		t.Fatalf("%d inclusion and %d consistency vectors, want 196 in all", inclusion, consistency)
	}
}
