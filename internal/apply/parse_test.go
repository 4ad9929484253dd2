package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store/storetest"
	"github.com/verityhq/verity/internal/strictjson"
)

func TestParseFilesSelection(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b.yaml":       "users:\n  - {userPrincipalName: b@contoso.com, displayName: B}\n",
		"a.yml":        "users:\n  - {userPrincipalName: a@contoso.com, displayName: A}\n",
		"c.json":       `{"users": [{"userPrincipalName": "c@contoso.com", "displayName": "C"}]}`,
		"README.md":    "not a manifest",
		".hidden.yaml": "users: [{userPrincipalName: h@contoso.com, displayName: H}]\n",
	})
	if err := os.Mkdir(filepath.Join(dir, "nested"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nested", "d.yaml"), []byte("users: [{userPrincipalName: d@contoso.com, displayName: D}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(t.TempDir(), "more.txt") // named explicitly: read as YAML
	if err := os.WriteFile(extra, []byte("users: [{userPrincipalName: e@contoso.com, displayName: E}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := parse(t, dir, extra, dir) // the directory twice counts once
	var got []string
	for _, u := range m.Users {
		got = append(got, u.UserPrincipalName)
	}
	if want := "a@contoso.com b@contoso.com c@contoso.com e@contoso.com"; strings.Join(got, " ") != want {
		t.Errorf("users %v, want %s", got, want)
	}
	if loc := m.Locate("users[3].displayName"); loc != extra+": users[0].displayName" {
		t.Errorf("Locate: %s", loc)
	}
	if loc := m.Locate("users[9]"); loc != "users[9]" {
		t.Errorf("Locate of a path outside the manifest: %s", loc)
	}
}

func TestParseFilesProblems(t *testing.T) {
	empty := t.TempDir()
	big := filepath.Join(t.TempDir(), "big.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileSize + 1); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	f.Close()
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{"NoPaths", nil, "parse manifest: no file or directory given"},
		{"EmptyDirectory", []string{empty}, "parse manifest: " + empty + " holds no .yaml, .yml or .json file"},
		{"Missing", []string{filepath.Join(empty, "nope.yaml")}, "parse manifest: stat " + filepath.Join(empty, "nope.yaml") + ": no such file or directory"},
		{"TooBig", []string{big}, big + ": larger than 16 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFiles(tc.paths)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}

// TestParseMultiDocument checks that documents split at "---" lines keep
// the file's line numbers in YAML errors and their number in other errors.
func TestParseMultiDocument(t *testing.T) {
	const file = `# Contoso
---
users:
  - userPrincipalName: a@contoso.com
    displayName: A
--- # second
users:
  - userPrincipalName: b@contoso.com
    displayName: B
...
---
groups:
  - displayName: [unclosed
`
	_, err := Parse("tenant.yaml", []byte(file))
	want := "tenant.yaml (document 3): yaml: line 13: did not find expected ',' or ']'"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	m, err := Parse("tenant.yaml", []byte(strings.Replace(file, "[unclosed", "SRE\n    bogus: 1", 1)))
	want = "tenant.yaml (document 3): groups[0].bogus: unknown field"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v (%v), want %s", err, m, want)
	}
	m, err = Parse("tenant.yaml", []byte(strings.Replace(file, "[unclosed", "SRE", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Users) != 2 || len(m.Groups) != 1 {
		t.Errorf("parsed %d users and %d groups", len(m.Users), len(m.Groups))
	}
}

// TestIDs checks how ids in a manifest are used: kept for new objects,
// matched for existing ones, and yielding to the natural key when another
// object already has it.
func TestIDs(t *testing.T) {
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	const aliceID, groupID = "0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	existing := userObject(t, "bob@contoso.com", "Bob")
	handMade(t, st, existing)
	m := &Manifest{
		Users: []directory.User{
			{ID: strings.ToUpper(aliceID), UserPrincipalName: "alice@contoso.com", DisplayName: "Alice"},
			{ID: "3f2504e0-4f89-41d3-9a0c-0305e82c3301", UserPrincipalName: "bob@contoso.com", DisplayName: "Bob"},
		},
		Groups: []Group{{GraphGroup: directory.GraphGroup{ID: groupID, DisplayName: "Team"},
			Members: &Members{Users: []string{"alice@contoso.com", "bob@contoso.com"}}}},
	}
	before, err := m.YAML()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := apply(t, st, m, Options{})
	want := `+ create user alice@contoso.com
+ create group "Team"

Plan: 2 to create, 0 to update, 0 to delete.`
	if p.String() != want {
		t.Errorf("plan:\n%s\nwant:\n%s", p, want)
	}
	if after, _ := m.YAML(); !bytes.Equal(before, after) {
		t.Errorf("Apply changed the caller's manifest:\n%s\n---\n%s", before, after)
	}
	if _, err := st.Get(ctx, directory.KindUser, aliceID); err != nil {
		t.Errorf("alice does not have the manifest's id: %v", err)
	}
	o, err := st.Get(ctx, directory.KindGroup, groupID)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := directory.Groups.FromObject(o)
	wantMembers := []string{aliceID, existing.ID}
	if existing.ID < aliceID {
		wantMembers = []string{existing.ID, aliceID}
	}
	if strings.Join(g.Members, ",") != strings.Join(wantMembers, ",") {
		t.Errorf("members %v, want %v", g.Members, wantMembers)
	}
	if p, _ := apply(t, st, m, Options{}); !p.Empty() {
		t.Errorf("second apply:\n%s", p)
	}
}

// TestManifestJSON checks that a manifest survives the JSON a client sends
// a server, decoded strictly as the API does, and that the server's plan
// errors can be located in the client's files.
func TestManifestJSON(t *testing.T) {
	m := parse(t, exampleTenant)
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var received Manifest
	if err := strictjson.Unmarshal(body, &received); err != nil {
		t.Fatalf("decode: %v", err)
	}
	st := storetest.OpenSQLite(t)
	apply(t, st, m, Options{})
	if p, _ := apply(t, st, &received, Options{}); !p.Empty() {
		t.Errorf("the received manifest differs:\n%s", p)
	}

	received.Groups[6].Members.Users = []string{"nobody@contoso.com"}
	_, err = Diff(context.Background(), st, &received, Options{})
	var e *Error
	if !errors.As(err, &e) || e.File != "" {
		t.Fatalf("error %v", err)
	}
	want := filepath.Join(exampleTenant, "groups.yaml") + ": groups[6].members.users[0]"
	if got := m.Locate(e.Path); got != want {
		t.Errorf("Locate(%s) = %s, want %s", e.Path, got, want)
	}
}
