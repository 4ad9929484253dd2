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

// basePolicy is an enabled policy that requires MFA of every user for
// every application; mkPolicy merges overrides into it.
const basePolicy = `{"displayName": "test", "state": "enabled",
	"conditions": {"applications": {"includeApplications": ["All"]}, "users": {"includeUsers": ["All"]}},
	"grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`

// mkPolicy parses basePolicy with overrides merged in: objects merge
// recursively, anything else (arrays, null) replaces.
func mkPolicy(t testing.TB, overrides string) *Policy {
	t.Helper()
	p, _, err := ParsePolicy(mergeJSON(t, basePolicy, overrides))
	if err != nil {
		t.Fatalf("mkPolicy(%s): %v", overrides, err)
	}
	return p
}

func mergeJSON(t testing.TB, base, overrides string) []byte {
	t.Helper()
	var b, o map[string]any
	if err := json.Unmarshal([]byte(base), &b); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(overrides), &o); err != nil {
		t.Fatalf("overrides %s: %v", overrides, err)
	}
	merge(b, o)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// compile compiles policies with the test app groups, failing the test on
// an error.
func compile(t testing.TB, opts CompileOptions, ps ...*Policy) *Engine {
	t.Helper()
	if opts.AppGroups == nil {
		opts.AppGroups = appGroups(t)
	}
	e, err := Compile(ps, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// evaluate runs one request through e.
func evaluate(e *Engine, req *Request) *Result {
	var res Result
	e.Evaluate(req, &res)
	return &res
}
