package access

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// objects is a read-only store.Reader over a fixed set of objects: the
// directory snapshot only needs List. (Store behaviour is tested against
// real databases in the store package; this only feeds directory.Build.)
type objects []store.Object

func (o objects) Get(context.Context, string, string) (store.Object, error) {
	return store.Object{}, store.ErrNotFound
}

func (o objects) GetByKey(context.Context, string, string) (store.Object, error) {
	return store.Object{}, store.ErrNotFound
}

func (o objects) List(_ context.Context, kind string, opts store.ListOptions) ([]store.Object, error) {
	var out []store.Object
	for _, obj := range o {
		if obj.Kind == kind && obj.ID > opts.AfterID {
			out = append(out, obj)
		}
	}
	slices.SortFunc(out, func(a, b store.Object) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out, nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestSnapshotPrincipals resolves requests from a real directory snapshot.
// Not parallel: it measures allocations.
func TestSnapshotPrincipals(t *testing.T) {
	member, guest := &directory.User{ID: alice, UserPrincipalName: "alice@contoso.com", DisplayName: "Alice"},
		&directory.User{ID: bob, UserPrincipalName: "bob_fabrikam.com#EXT#@contoso.com", DisplayName: "Bob", UserType: directory.UserTypeGuest}
	inner := &directory.Group{GraphGroup: directory.GraphGroup{ID: groupChild, DisplayName: "Inner"}, Members: []string{alice}}
	outer := &directory.Group{GraphGroup: directory.GraphGroup{ID: groupG, DisplayName: "Outer"}, Members: []string{groupChild}}
	ga := &directory.RoleAssignment{ID: "10000000-0000-4000-8000-000000000099", PrincipalID: alice, RoleDefinitionID: roleGA}
	for _, r := range []interface{ Normalize() }{member, guest, inner, outer, ga} {
		r.Normalize()
	}
	snap, err := directory.Build(context.Background(), objects{
		must(directory.Users.Object(member)), must(directory.Users.Object(guest)),
		must(directory.Groups.Object(inner)), must(directory.Groups.Object(outer)),
		must(directory.RoleAssignments.Object(ga)),
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := SnapshotPrincipals{snap}
	req := &Request{UserID: alice, Applications: []string{exchange}}
	req.Resolve(p)
	if !slices.Equal(req.Groups, []string{groupG, groupChild}) || !slices.Equal(req.Roles, []string{roleGA}) || req.GuestType != 0 {
		t.Errorf("alice: groups %v, roles %v, guest %v", req.Groups, req.Roles, req.GuestType)
	}
	e := compile(t, CompileOptions{},
		mkPolicy(t, `{"displayName": "outer", "conditions": {"users": {"includeUsers": [], "includeGroups": ["`+groupG+`"]}}}`),
		mkPolicy(t, `{"displayName": "admins", "conditions": {"users": {"includeUsers": [], "includeRoles": ["`+roleGA+`"]}}}`),
		mkPolicy(t, `{"displayName": "guests", "conditions": {"users": {"includeUsers": ["GuestsOrExternalUsers"]}}}`))
	var res Result
	e.Evaluate(req, &res)
	if got := []bool{res.Policies[0].Applies, res.Policies[1].Applies, res.Policies[2].Applies}; !slices.Equal(got, []bool{true, true, false}) {
		t.Errorf("alice: applies %v; want outer and admins", got)
	}
	req = &Request{UserID: bob, Applications: []string{exchange}}
	req.Resolve(p)
	e.Evaluate(req, &res)
	if got := []bool{res.Policies[0].Applies, res.Policies[1].Applies, res.Policies[2].Applies}; !slices.Equal(got, []bool{false, false, true}) {
		t.Errorf("bob: applies %v; want guests only", got)
	}
	if testing.AllocsPerRun(100, func() { req.Resolve(p) }) != 0 {
		t.Error("Resolve from a snapshot allocates")
	}
}

// TestRoleWindow: a policy aimed at a directory role (includeRoles)
// applies while the user's time-bound assignment of it is in force, at
// the request's Now, and not before or after; resolving it still does
// not allocate. Not parallel: it measures allocations.
func TestRoleWindow(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	member := &directory.User{ID: alice, UserPrincipalName: "alice@contoso.com", DisplayName: "Alice"}
	ga := &directory.RoleAssignment{ID: "10000000-0000-4000-8000-000000000099", PrincipalID: alice, RoleDefinitionID: roleGA,
		Schedule: schedule.Schedule{StartDateTime: &start, EndDateTime: &end, AssignmentType: schedule.Activated}}
	for _, r := range []interface{ Normalize() }{member, ga} {
		r.Normalize()
	}
	if err := ga.Validate(); err != nil {
		t.Fatal(err)
	}
	snap, err := directory.Build(context.Background(), objects{must(directory.Users.Object(member)), must(directory.RoleAssignments.Object(ga))}, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := compile(t, CompileOptions{},
		mkPolicy(t, `{"displayName": "admins need MFA", "conditions": {"users": {"includeUsers": [], "includeRoles": ["`+roleGA+`"]}},
		  "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`))
	p := SnapshotPrincipals{snap}
	for _, tt := range []struct {
		name    string
		now     time.Time
		applies bool
	}{
		{"before the activation", start.Add(-time.Second), false},
		{"at its start", start, true},
		{"during it", start.Add(59 * time.Minute), true},
		{"at its end", end, false},
		{"after it", end.Add(time.Hour), false},
		{"no time: now, long after it", time.Time{}, false},
	} {
		req := &Request{Identity: IdentityUser, UserID: alice, Applications: []string{exchange}, Now: tt.now}
		req.Resolve(p)
		var res Result
		e.Evaluate(req, &res)
		if res.Policies[0].Applies != tt.applies {
			t.Errorf("%s: roles %v, policy applies %v, want %v", tt.name, req.Roles, res.Policies[0].Applies, tt.applies)
		}
		if tt.applies && res.Outcome != OutcomeInterrupt {
			t.Errorf("%s: outcome %v, want an MFA challenge", tt.name, res.Outcome)
		}
	}
	req := &Request{Identity: IdentityUser, UserID: alice, Applications: []string{exchange}, Now: start}
	if testing.AllocsPerRun(100, func() { req.Resolve(p) }) != 0 {
		t.Error("Resolve of time-bound roles allocates")
	}
}

func TestStaticDirectory(t *testing.T) {
	t.Parallel()
	// A cycle in nesting does not loop; upper-case ids are folded.
	d, err := ParseStaticDirectory([]byte(`{"users": [{"id": "A0000000-0000-4000-8000-000000000001", "memberOf": ["` + groupChild + `"], "roles": ["` + roleGA + `"]}],
		"groups": [{"id": "` + groupChild + `", "memberOf": ["` + groupG + `"]}, {"id": "` + groupG + `", "memberOf": ["` + groupChild + `"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.TransitiveMemberOf(alice); !slices.Equal(got, []string{groupG, groupChild}) {
		t.Errorf("groups %v", got)
	}
	for _, bad := range []string{`{"users": [{"id": "alice"}]}`, `{"users": [], "groups": [{"id": "` + groupG + `", "memberOf": ["x"]}]}`, `{"users": [{"id": "` + alice + `", "userType": "guest"}]}`, `{"people": []}`} {
		if _, err := ParseStaticDirectory([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
