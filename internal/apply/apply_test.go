package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

const exampleTenant = "../../examples/tenant"

// counts is how many objects of each managed kind a store holds.
type counts map[string]int

func countAll(t *testing.T, st store.Reader) counts {
	t.Helper()
	c := counts{}
	for _, kind := range managedKinds {
		objs, err := st.List(context.Background(), kind, store.ListOptions{})
		if err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		c[kind] = len(objs)
	}
	return c
}

func equalCounts(a, b counts) bool {
	for _, k := range managedKinds {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// exampleCounts is what examples/tenant holds.
var exampleCounts = counts{
	directory.KindUser: 9, directory.KindGroup: 7, directory.KindApplication: 3, directory.KindServicePrincipal: 5,
	directory.KindNamedLocation: 3, access.Kind: 4, directory.KindRoleAssignment: 4, rbac.Kind: 5,
	directory.KindAppRoute: 1, rbac.DefinitionKind: 1,
}

func parse(t testing.TB, paths ...string) *Manifest {
	t.Helper()
	m, err := ParseFiles(paths)
	if err != nil {
		t.Fatalf("parse %v: %v", paths, err)
	}
	return m
}

func apply(t testing.TB, st store.Store, m *Manifest, opts Options) (*Plan, int64) {
	t.Helper()
	p, rev, err := Apply(context.Background(), st, m, opts)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return p, rev
}

func revision(t *testing.T, st store.Store) int64 {
	t.Helper()
	rev, err := st.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// writeFiles writes name → content into a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// copyExamples copies examples/tenant into a new directory and adds files.
func copyExamples(t *testing.T, extra map[string]string) string {
	t.Helper()
	entries, err := os.ReadDir(exampleTenant)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(exampleTenant, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	for k, v := range extra {
		files[k] = v
	}
	return writeFiles(t, files)
}

func snapshot(t *testing.T, st store.Store) *directory.Snapshot {
	t.Helper()
	var s *directory.Snapshot
	err := st.View(context.Background(), func(ctx context.Context, r store.Reader, rev int64) error {
		var err error
		s, err = directory.Build(ctx, r, rev)
		return err
	})
	if err != nil {
		t.Fatalf("build directory snapshot: %v", err)
	}
	return s
}

func TestApplyExampleTenant(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		m := parse(t, exampleTenant)

		dry, rev, err := Apply(ctx, st, m, Options{DryRun: true})
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if rev != 0 || revision(t, st) != 0 || !equalCounts(countAll(t, st), counts{}) {
			t.Fatalf("dry run wrote: revision %d, counts %v", revision(t, st), countAll(t, st))
		}

		plan, rev := apply(t, st, m, Options{})
		if c, u, d := plan.Counts(); c != 42 || u != 0 || d != 0 {
			t.Fatalf("first apply: %d creates, %d updates, %d deletes; want 42, 0, 0\n%s", c, u, d, plan)
		}
		if plan.String() != dry.String() {
			t.Errorf("dry run plan differs from the applied one:\n%s\n---\n%s", dry, plan)
		}
		if rev != 1 {
			t.Errorf("first apply committed revision %d, want 1 (one transaction)", rev)
		}
		if got := countAll(t, st); !equalCounts(got, exampleCounts) {
			t.Errorf("counts %v, want %v", got, exampleCounts)
		}
		for _, kind := range managedKinds {
			objs, _ := st.List(ctx, kind, store.ListOptions{})
			for _, o := range objs {
				if o.ManagedBy != ManagedBy {
					t.Errorf("%s %s: ManagedBy %q, want %q", kind, o.ID, o.ManagedBy, ManagedBy)
				}
			}
		}

		s := snapshot(t, st)
		id := func(upn string) string {
			u, ok := s.UserByUPN(upn)
			if !ok {
				t.Fatalf("no user %s", upn)
			}
			return u.ID
		}
		group := func(name string) string {
			g, ok := s.GroupByName(name)
			if !ok {
				t.Fatalf("no group %s", name)
			}
			return g.ID
		}
		sp, _ := s.ServicePrincipalByAppID("128accb2-4577-4564-8b3c-3223b04b29b2")
		memberships := []struct {
			principal, group string
			want             bool
		}{
			{id("bob@contoso.com"), group("SRE"), true},
			{id("bob@contoso.com"), group("Platform Engineers"), true}, // through SRE
			{id("bob@contoso.com"), group("All Engineering"), true},    // three levels
			{id("alice@contoso.com"), group("All Engineering"), true},
			{id("alice@contoso.com"), group("SRE"), false},
			{id("dave@contoso.com"), group("Platform Engineers"), false},
			{id("frank_fabrikam.com#EXT#@contoso.onmicrosoft.com"), group("All Engineering"), true},
			{sp.ID, group("All Engineering"), true},
			{id("carol@contoso.com"), group("Security Operations"), true},
		}
		for _, c := range memberships {
			if got := s.InGroup(c.principal, c.group); got != c.want {
				t.Errorf("InGroup(%s, %s) = %v, want %v", c.principal, c.group, got, c.want)
			}
		}
		if !s.HasDirectoryRole(id("alice@contoso.com"), directory.GlobalAdministratorRoleID) {
			t.Error("alice is not a Global Administrator")
		}
		securityReader := "5d6b6bb7-de71-4623-b4af-96380a352509"
		if !s.HasDirectoryRole(id("carol@contoso.com"), securityReader) {
			t.Error("carol does not hold Security Reader through Security Operations")
		}
		if u, _ := s.User(id("heidi@contoso.com")); u.Enabled() {
			t.Error("heidi is enabled")
		}
		if app, ok := s.ApplicationByAppID("3f9c7a52-6b1e-4d0a-9e8f-2c4b7d1a5e60"); !ok || app.Web == nil || app.SPA == nil || app.PublicClient == nil ||
			!slices.Contains(app.Web.RedirectURIs, "https://expenses.contoso.com/signin-oidc") || app.Web.LogoutURL == "" ||
			!slices.Contains(app.PublicClient.RedirectURIs, "com.contoso.expenses:/oauth2redirect") {
			t.Errorf("the OIDC client in the snapshot: %+v", app)
		}

		// A second apply of the same manifest changes nothing, and the
		// store revision does not move.
		again, rev2 := apply(t, st, parse(t, exampleTenant), Options{})
		if !again.Empty() || again.String() != "No changes." {
			t.Errorf("second apply:\n%s", again)
		}
		if rev2 != rev || revision(t, st) != rev {
			t.Errorf("second apply moved the revision from %d to %d", rev, revision(t, st))
		}
	})
}

func TestExportRoundTrip(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		a := open(t)
		apply(t, a, parse(t, exampleTenant), Options{})
		exported := export(t, a)

		// The export applies to the store it came from without a change.
		m, err := Parse("export.yaml", exported)
		if err != nil {
			t.Fatalf("parse export: %v\n%s", err, exported)
		}
		if p, _ := apply(t, a, m, Options{Prune: true}); !p.Empty() {
			t.Errorf("applying the export to its own store:\n%s", p)
		}

		// On a fresh store it recreates the same objects, ids included.
		b := open(t)
		apply(t, b, m, Options{})
		if again := export(t, b); !bytes.Equal(again, exported) {
			t.Errorf("export of the copy differs:\n%s\n---\n%s", exported, again)
		}
		if p, _ := apply(t, b, m, Options{}); !p.Empty() {
			t.Errorf("second apply of the export:\n%s", p)
		}
		for _, kind := range managedKinds {
			objs, _ := a.List(ctx, kind, store.ListOptions{})
			for _, o := range objs {
				if _, err := b.Get(ctx, kind, o.ID); err != nil {
					t.Errorf("%s %s (%s) is not in the copy: %v", kind, o.ID, o.Key, err)
				}
			}
		}
	})
}

func export(t *testing.T, st store.Store) []byte {
	t.Helper()
	var out []byte
	err := st.View(context.Background(), func(ctx context.Context, r store.Reader, _ int64) error {
		m, err := Export(ctx, r)
		if err != nil {
			return err
		}
		out, err = m.YAML()
		return err
	})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return out
}

// handMade writes objects as an administrator would through the API:
// without ManagedBy.
func handMade(t *testing.T, st store.Store, objs ...store.Object) {
	t.Helper()
	_, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Create(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write hand-made objects: %v", err)
	}
}

func userObject(t *testing.T, upn, name string) store.Object {
	t.Helper()
	u := &directory.User{ID: directory.NewID(), UserPrincipalName: upn, DisplayName: name}
	u.Normalize()
	o, err := directory.Users.Object(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestPrune(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		apply(t, st, parse(t, exampleTenant), Options{})
		mallory := userObject(t, "mallory@contoso.com", "Mallory (made by hand)")
		handMade(t, st, mallory)

		// Drop heidi, the Build agents location and erin's Owner
		// assignment from the manifest.
		m := parse(t, exampleTenant)
		m.Users = removeWhere(m.Users, func(u directory.User) bool { return u.UserPrincipalName == "heidi@contoso.com" })
		m.NamedLocations = removeWhere(m.NamedLocations, func(n directory.NamedLocation) bool { return n.DisplayName == "Build agents" })
		m.RoleAssignments = removeWhere(m.RoleAssignments, func(a RoleAssignment) bool { return a.User == "erin@contoso.com" })
		m.origins = nil

		// Without Prune nothing is deleted.
		if p, _ := apply(t, st, m, Options{}); !p.Empty() {
			t.Errorf("apply without prune:\n%s", p)
		}
		p, _ := apply(t, st, m, Options{Prune: true})
		want := `- delete roleAssignment Owner for user erin@contoso.com at /apps/payroll
- delete namedLocation "Build agents"
- delete user heidi@contoso.com

Plan: 0 to create, 0 to update, 3 to delete.`
		if p.String() != want {
			t.Errorf("prune plan:\n%s\nwant:\n%s", p, want)
		}
		if _, err := st.Get(ctx, directory.KindUser, mallory.ID); err != nil {
			t.Errorf("prune deleted the hand-made user: %v", err)
		}
		wantCounts := counts{}
		for k, v := range exampleCounts {
			wantCounts[k] = v
		}
		// Users: mallory (made by hand) is added and heidi pruned, so the count is unchanged.
		wantCounts[directory.KindNamedLocation]--
		wantCounts[rbac.Kind]--
		if got := countAll(t, st); !equalCounts(got, wantCounts) {
			t.Errorf("counts after prune %v, want %v", got, wantCounts)
		}

		// Listing the hand-made user updates it but does not make it the
		// manifest's: dropping it again prunes nothing.
		m.Users = append(m.Users, directory.User{UserPrincipalName: "mallory@contoso.com", DisplayName: "Mallory (renamed by manifest)"})
		p, _ = apply(t, st, m, Options{Prune: true})
		if want := "~ update user mallory@contoso.com (displayName)\n\nPlan: 0 to create, 1 to update, 0 to delete."; p.String() != want {
			t.Errorf("update plan:\n%s\nwant:\n%s", p, want)
		}
		if o, _ := st.Get(ctx, directory.KindUser, mallory.ID); o.ManagedBy != "" {
			t.Errorf("hand-made user became ManagedBy %q", o.ManagedBy)
		}
		m.Users = m.Users[:len(m.Users)-1]
		p, _ = apply(t, st, m, Options{Prune: true})
		if !p.Empty() {
			t.Errorf("prune touched a hand-made user:\n%s", p)
		}
	})
}

func removeWhere[T any](s []T, drop func(T) bool) []T {
	var out []T
	for _, v := range s {
		if !drop(v) {
			out = append(out, v)
		}
	}
	return out
}

func TestUpdateShowsFields(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		apply(t, st, parse(t, exampleTenant), Options{})
		s := snapshot(t, st)
		bob, _ := s.UserByUPN("bob@contoso.com")
		created := bob.CreatedDateTime

		m := parse(t, exampleTenant)
		for i := range m.Groups {
			if m.Groups[i].DisplayName == "SRE" {
				m.Groups[i].Description = "Keeps production up"
				m.Groups[i].Members.Users = []string{"Robert@Contoso.com"} // ivan leaves; case does not matter
			}
		}
		for i := range m.Users {
			if m.Users[i].UserPrincipalName == "bob@contoso.com" {
				// A rename by id keeps the object, its memberships and
				// its createdDateTime; a createdDateTime in the manifest
				// is ignored.
				m.Users[i].ID = bob.ID
				m.Users[i].UserPrincipalName = "robert@contoso.com"
				m.Users[i].CreatedDateTime = nil
			}
		}
		for i := range m.NamedLocations {
			if m.NamedLocations[i].DisplayName == "Allowed countries" {
				m.NamedLocations[i].CountriesAndRegions = append(m.NamedLocations[i].CountriesAndRegions, "SE")
			}
		}
		p, _ := apply(t, st, m, Options{})
		want := `~ update user robert@contoso.com (userPrincipalName)
~ update group "SRE" (description, members)
~ update namedLocation "Allowed countries" (countriesAndRegions)

Plan: 0 to create, 3 to update, 0 to delete.`
		if p.String() != want {
			t.Errorf("plan:\n%s\nwant:\n%s", p, want)
		}
		s = snapshot(t, st)
		robert, ok := s.UserByUPN("robert@contoso.com")
		if !ok || robert.ID != bob.ID {
			t.Fatalf("rename by id made a new user")
		}
		if robert.CreatedDateTime == nil || !robert.CreatedDateTime.Equal(*created) {
			t.Errorf("createdDateTime changed from %v to %v", created, robert.CreatedDateTime)
		}
		sre, _ := s.GroupByName("sre")
		if !s.InGroup(robert.ID, sre.ID) {
			t.Error("robert is not in SRE")
		}
		ivan, _ := s.UserByUPN("ivan@contoso.com")
		if s.InGroup(ivan.ID, sre.ID) {
			t.Error("ivan is still in SRE")
		}
		loc, _ := s.LocationByName("Allowed countries")
		obj, err := st.Get(ctx, directory.KindNamedLocation, loc.ID)
		if err != nil {
			t.Fatal(err)
		}
		nl, _ := directory.NamedLocations.FromObject(obj)
		if nl.ModifiedDateTime == nil || nl.CreatedDateTime == nil || !nl.ModifiedDateTime.After(*nl.CreatedDateTime) {
			t.Errorf("named location created %v, modified %v", nl.CreatedDateTime, nl.ModifiedDateTime)
		}
	})
}

// TestSignOut checks that an apply ends the sessions of the users it
// disables and forgets the credentials of those it deletes.
func TestSignOut(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		apply(t, st, parse(t, exampleTenant), Options{})
		s := snapshot(t, st)
		bob, _ := s.UserByUPN("bob@contoso.com")
		heidi, _ := s.UserByUPN("heidi@contoso.com")
		for i, u := range []*directory.User{bob, heidi} {
			hash := []byte(fmt.Sprintf("%032d", i))
			if err := st.CreateToken(ctx, store.Token{Hash: hash, PrincipalID: u.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			if err := st.SetCredential(ctx, store.Credential{PrincipalID: u.ID, Type: "password", Hash: "$argon2id$test", UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}

		m := parse(t, exampleTenant)
		m.Users = removeWhere(m.Users, func(u directory.User) bool { return u.UserPrincipalName == "heidi@contoso.com" })
		off := false
		for i := range m.Users {
			if m.Users[i].UserPrincipalName == "bob@contoso.com" {
				m.Users[i].AccountEnabled = &off
			}
		}
		m.origins = nil
		apply(t, st, m, Options{Prune: true})
		if _, err := st.GetToken(ctx, []byte(fmt.Sprintf("%032d", 0))); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("disabled bob's token: %v", err)
		}
		if _, err := st.GetCredential(ctx, bob.ID, "password"); err != nil {
			t.Errorf("disabled bob lost his password: %v", err)
		}
		if _, err := st.GetToken(ctx, []byte(fmt.Sprintf("%032d", 1))); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted heidi's token: %v", err)
		}
		if _, err := st.GetCredential(ctx, heidi.ID, "password"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted heidi's password: %v", err)
		}
	})
}
