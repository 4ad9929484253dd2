package apply

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/store"
)

// TestFailureWritesNothing applies the example tenant plus one more file
// (last in name order) that breaks the apply, on top of an earlier apply
// of a different tenant, so that the plan has writes before the problem.
func TestFailureWritesNothing(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		wantErr string
	}{
		{"DanglingReference", `
groups:
  - displayName: Night Shift
    members:
      users: [alice@contoso.com, nobody@contoso.com]
`, `zz-bad.yaml: groups[0].members.users[1]: no user "nobody@contoso.com" in the manifest or the directory`},
		{"InvalidUPN", `
users:
  - userPrincipalName: judy@@contoso.com
    displayName: Judy
`, `zz-bad.yaml: users[0].userPrincipalName: must have the form local@domain with exactly one @`},
		{"Cycle", `
groups:
  - displayName: Inner Circle
    members:
      groups: [All Engineering]
  - displayName: Outer Circle
    members:
      groups: [Inner Circle]
roleAssignments:
  - group: Outer Circle
    role: Reader
`, `zz-bad.yaml: groups[0].members.groups[0]: group nesting cycle: "Inner Circle" → "All Engineering" → "Platform Engineers" → "SRE" → "Inner Circle"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
				st := open(t)
				// An earlier tenant: the example without its groups.
				first := parse(t, exampleTenant)
				first.Groups, first.DirectoryRoleAssignments, first.RoleAssignments = nil, nil, nil
				apply(t, st, first, Options{})
				rev, before := revision(t, st), countAll(t, st)

				extra := map[string]string{"zz-bad.yaml": tc.file}
				if tc.name == "Cycle" {
					// SRE gains Inner Circle, closing the loop.
					extra["groups.yaml"] = strings.Replace(readExample(t, "groups.yaml"),
						"users: [bob@contoso.com, ivan@contoso.com]", "users: [bob@contoso.com, ivan@contoso.com]\n      groups: [Inner Circle]", 1)
				}
				dir := copyExamples(t, extra)
				_, _, err := Apply(context.Background(), st, parse(t, dir), Options{Prune: true})
				if err == nil {
					t.Fatal("apply succeeded")
				}
				if got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""); got != tc.wantErr {
					t.Errorf("error:\n%s\nwant:\n%s", got, tc.wantErr)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("error %T is not an *Error", err)
				}
				if revision(t, st) != rev || !equalCounts(countAll(t, st), before) {
					t.Errorf("the failed apply wrote: revision %d → %d, counts %v → %v", rev, revision(t, st), before, countAll(t, st))
				}
			})
		})
	}
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(exampleTenant, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStoreFailureMidWrite makes the store refuse a write after others
// succeeded in the same transaction (two users trade names, which the
// unique key forbids half way), and checks that nothing is kept.
func TestStoreFailureMidWrite(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		apply(t, st, parse(t, exampleTenant), Options{})
		rev, before := revision(t, st), countAll(t, st)

		m := parse(t, exampleTenant)
		s := snapshot(t, st)
		bob, _ := s.UserByUPN("bob@contoso.com")
		ivan, _ := s.UserByUPN("ivan@contoso.com")
		for i := range m.Users {
			switch m.Users[i].UserPrincipalName {
			case "alice@contoso.com":
				m.Users[i].JobTitle = "CTO" // written first
			case "bob@contoso.com":
				m.Users[i].ID, m.Users[i].UserPrincipalName = bob.ID, "ivan@contoso.com"
			case "ivan@contoso.com":
				m.Users[i].ID, m.Users[i].UserPrincipalName = ivan.ID, "bob@contoso.com"
			}
		}
		m.Groups = nil // their member names would follow the trade
		m.DirectoryRoleAssignments, m.RoleAssignments = nil, nil
		_, _, err := Apply(ctx, st, m, Options{})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("apply: %v, want a conflict", err)
		}
		if revision(t, st) != rev || !equalCounts(countAll(t, st), before) {
			t.Fatalf("the failed apply wrote: revision %d → %d", rev, revision(t, st))
		}
		s = snapshot(t, st)
		if a, _ := s.UserByUPN("alice@contoso.com"); a.JobTitle != "Head of Platform" {
			t.Errorf("alice's job title is %q: the first write was kept", a.JobTitle)
		}
	})
}
