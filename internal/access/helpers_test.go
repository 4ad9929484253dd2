package access

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/verityhq/verity/internal/directory"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// placeholder matches the <Name> placeholders of the AlexFilipin policies.
var placeholder = regexp.MustCompile(`<[A-Za-z0-9]+>`)

// fakeGUID derives a stable GUID from a name, so placeholders of the same
// name get the same id in every file.
func fakeGUID(name string) string {
	h := sha256.Sum256([]byte(name))
	x := fmt.Sprintf("%x", h[:16])
	return x[0:8] + "-" + x[8:12] + "-4" + x[13:16] + "-8" + x[17:20] + "-" + x[20:32]
}

// substitute replaces placeholders: in display names by the bare name, in
// id lists by a generated GUID.
func substitute(data []byte) []byte {
	return placeholder.ReplaceAllFunc(data, func(m []byte) []byte {
		name := string(m[1 : len(m)-1])
		if name == "RING" {
			return []byte("R1")
		}
		return []byte(fakeGUID(name))
	})
}

// policyFile is one source file of the shared policy set.
type policyFile struct {
	name string
	data []byte
}

// allPolicyFiles lists the 127 policies as documents ParsePolicies reads.
func allPolicyFiles(t testing.TB) []policyFile {
	t.Helper()
	var out []policyFile
	for _, pattern := range []string{
		"conditional-access/j0eyv-ConditionalAccessBaseline/policies/*.json",
		"conditional-access/AlexFilipin-ConditionalAccess/*/*.json",
		"conditional-access/microsoft-ca-templates/*.json",
	} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("glob %s: %v", pattern, err)
		}
		slices.Sort(files)
		for _, f := range files {
			rel, _ := filepath.Rel("testdata", f)
			out = append(out, policyFile{rel, substitute(readFile(t, rel))})
		}
	}
	var docs struct {
		CreateExamples struct {
			Policies []struct {
				Response json.RawMessage `json:"response"`
			} `json:"policies"`
		} `json:"createExamples"`
		WhatIfExamplePolicies struct {
			Policies []json.RawMessage `json:"policies"`
		} `json:"whatIfExamplePolicies"`
	}
	const docPath = "conditional-access/graph-docs-examples/graph-docs-ca-policies.json"
	if err := json.Unmarshal(readFile(t, docPath), &docs); err != nil {
		t.Fatal(err)
	}
	for i, p := range docs.CreateExamples.Policies {
		out = append(out, policyFile{fmt.Sprintf("%s#createExamples[%d]", docPath, i), p.Response})
	}
	for i, p := range docs.WhatIfExamplePolicies.Policies {
		out = append(out, policyFile{fmt.Sprintf("%s#whatIfExamplePolicies[%d]", docPath, i), p})
	}
	return out
}

func appGroups(t testing.TB) map[string][]string {
	t.Helper()
	g, err := ParseAppGroups(readFile(t, "entra/conditional-access-app-groups.json"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func namedLocations(t testing.TB) []directory.NamedLocation {
	t.Helper()
	files, _ := filepath.Glob("testdata/conditional-access/j0eyv-ConditionalAccessBaseline/named-locations/*.json")
	var out []directory.NamedLocation
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var l directory.NamedLocation
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, l)
	}
	return out
}
