package apply

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseManifest feeds arbitrary bytes to Parse, as YAML and as JSON.
// Parsing must never panic, every failure must be an *Error, and whatever
// parses must survive YAML() and a second Parse unchanged.
func FuzzParseManifest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(exampleTenant, "*.yaml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "---\n---\n", "users: []\n", "{}", "null", "[]", "users: [null]\n",
		`{"users":[{"userPrincipalName":"a@b.c","displayName":"A"}]}`,
		"groups:\n  - displayName: G\n    members: {users: [a@b.c], groups: [H]}\n",
		"namedLocations:\n  - \"@odata.type\": \"#microsoft.graph.countryNamedLocation\"\n    displayName: X\n    countriesAndRegions: [\"NO\"]\n",
		"roleAssignments:\n  - user: a@b.c\n    role: Owner\n--- # two\ndirectoryRoleAssignments:\n  - group: G\n    role: Global Reader\n",
		"users:\n  - &a {userPrincipalName: a@b.c, displayName: A}\n  - *a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"fuzz.yaml", "fuzz.json"} {
			m, err := Parse(name, data)
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("%s: error %T is not an *Error: %v", name, err, err)
				}
				continue
			}
			y, err := m.YAML()
			if err != nil {
				t.Fatalf("%s: YAML of a parsed manifest: %v", name, err)
			}
			m2, err := Parse("again.yaml", y)
			if err != nil {
				t.Fatalf("%s: parse the YAML of a parsed manifest: %v\n%s", name, err, y)
			}
			y2, err := m2.YAML()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(y, y2) {
				t.Fatalf("%s: YAML changed on a round trip:\n%s\n---\n%s", name, y, y2)
			}
		}
	})
}
