package apply

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// TestErrors checks the exact message of a bad manifest, found either when
// parsing or when planning against an empty store.
func TestErrors(t *testing.T) {
	const alice = "users:\n  - userPrincipalName: alice@contoso.com\n    displayName: Alice\n"
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"UnknownField", map[string]string{"users.yaml": alice + "    favouriteColour: teal\n"},
			"users.yaml: users[0].favouriteColour: unknown field"},
		{"UnknownSection", map[string]string{"tenant.yaml": "user:\n  - displayName: x\n"},
			"tenant.yaml: user: unknown field"},
		{"WrongType", map[string]string{"users.yaml": alice + "    accountEnabled: \"yes\"\n"},
			"users.yaml: users[0].accountEnabled: must be true or false, not a string"},
		{"WrongTypeJSON", map[string]string{"groups.json": `{"groups": [{"displayName": "SRE", "members": {"users": "bob"}}]}`},
			"groups.json: groups[0].members.users: must be an array, not a string"},
		{"NorwayIsFalse", map[string]string{"locations.yaml": `namedLocations:
  - "@odata.type": "#microsoft.graph.countryNamedLocation"
    displayName: Nordics
    countriesAndRegions: [SE, NO]
`}, "locations.yaml: namedLocations[0].countriesAndRegions[1]: must be a string, not a boolean"},
		{"NullEntry", map[string]string{"users.yaml": "users:\n  -\n"},
			"users.yaml: users[0]: must be an object, not null"},
		{"YAMLSyntax", map[string]string{"users.yaml": alice + "  - userPrincipalName: [bob\n"},
			"users.yaml: yaml: line 4: did not find expected ',' or ']'"},
		{"DuplicateKey", map[string]string{"users.yaml": alice + "    displayName: Alicia\n"},
			`users.yaml: yaml: unmarshal errors:
  line 4: key "displayName" already set in map`},
		{"BadReference", map[string]string{
			"a.yaml": alice,
			"groups.yaml": `groups:
  - displayName: Platform
  - displayName: SRE
  - displayName: Platform Engineers
    members:
      users: [alice@contoso.com, bob@contoso.com]
`}, `groups.yaml: groups[2].members.users[1]: no user "bob@contoso.com" in the manifest or the directory`},
		{"DuplicateAcrossFiles", map[string]string{
			"a.yaml": alice,
			"b.yaml": "users:\n  - userPrincipalName: Alice@Contoso.com\n    displayName: Alice again\n",
		}, `b.yaml: users[0].userPrincipalName: duplicate user "Alice@Contoso.com", first at a.yaml: users[0]`},
		{"DuplicateID", map[string]string{"apps.yaml": `servicePrincipals:
  - id: 6f1a8f2e-5a8e-4a4e-9a59-0d3c4a5b6c7d
    appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    displayName: One
  - id: 6F1A8F2E-5A8E-4A4E-9A59-0D3C4A5B6C7D
    appId: 128accb2-4577-4564-8b3c-3223b04b29b2
    displayName: Two
`}, "apps.yaml: servicePrincipals[1].id: duplicate service principal id 6F1A8F2E-5A8E-4A4E-9A59-0D3C4A5B6C7D, first at apps.yaml: servicePrincipals[0]"},
		{"SecondDocument", map[string]string{"roles.yaml": alice + `---
roleAssignments:
  - user: alice@contoso.com
    role: Admin
`}, `roles.yaml (document 2): roleAssignments[0].role: unknown role "Admin"; want a built-in role (Owner, Reader, ...), a custom role in roleDefinitions, or a role definition id`},
		{"InvalidScope", map[string]string{"roles.yaml": alice + `roleAssignments:
  - user: alice@contoso.com
    role: Reader
    scope: /apps/../vaults
`}, "roles.yaml: roleAssignments[0].scope: must be a clean absolute path such as / or /apps/payroll"},
		{"TwoPrincipals", map[string]string{"roles.yaml": alice + `directoryRoleAssignments:
  - user: alice@contoso.com
    group: SRE
    role: Global Reader
`}, "roles.yaml: directoryRoleAssignments[0]: name exactly one principal: user, group or servicePrincipal"},
		{"GroupNotRoleAssignable", map[string]string{"roles.yaml": `groups:
  - displayName: SRE
directoryRoleAssignments:
  - group: sre
    role: Global Reader
`}, `roles.yaml: directoryRoleAssignments[0].group: group "SRE" cannot hold a directory role: it needs isAssignableToRole: true`},
		{"UnknownDirectoryRole", map[string]string{"roles.yaml": alice + `directoryRoleAssignments:
  - user: alice@contoso.com
    role: Global Admin
`}, `roles.yaml: directoryRoleAssignments[0].role: no built-in directory role "Global Admin" (give its display name or template id)`},
		{"RepeatedAssignment", map[string]string{"roles.yaml": alice + `directoryRoleAssignments:
  - user: alice@contoso.com
    role: Global Administrator
  - user: ALICE@contoso.com
    role: 62e90394-69f5-4237-9190-012177145e10
    directoryScopeId: /
`}, "roles.yaml: directoryRoleAssignments[1]: repeats roles.yaml: directoryRoleAssignments[0]: same principal, role and scope"},
		{"SelfMember", map[string]string{"groups.yaml": "groups:\n  - displayName: SRE\n    members:\n      groups: [sre]\n"},
			"groups.yaml: groups[0].members.groups[0]: a group cannot be a member of itself"},
		{"Cycle", map[string]string{"groups.yaml": `groups:
  - displayName: A
    members: {groups: [B]}
  - displayName: B
    members: {groups: [C]}
  - displayName: C
    members: {groups: [A]}
`}, `groups.yaml: groups[2].members.groups[0]: group nesting cycle: "C" → "A" → "B" → "C"`},
		{"IDOfAnotherKind", map[string]string{"tenant.yaml": `users:
  - id: 0f8fad5b-d9cb-469f-a165-70867728950e
    userPrincipalName: alice@contoso.com
    displayName: Alice
groups:
  - id: 0F8FAD5B-D9CB-469F-A165-70867728950E
    displayName: Team
    members: {users: [alice@contoso.com]}
`}, "tenant.yaml: groups[0].id: 0f8fad5b-d9cb-469f-a165-70867728950e is already the id of a user"},
		{"ApplicationWithoutAppID", map[string]string{"apps.yaml": "applications:\n  - displayName: Payroll\n"},
			"apps.yaml: applications[0].appId: required: the manifest matches applications by appId"},
		{"InvalidLocation", map[string]string{"locations.yaml": `namedLocations:
  - "@odata.type": "#microsoft.graph.ipNamedLocation"
    displayName: Everywhere
    ipRanges: [{cidrAddress: 0.0.0.0/0}]
`}, "locations.yaml: namedLocations[0].ipRanges[0].cidrAddress: must be /8 or narrower, not /0"},
		{"InvalidRoute", map[string]string{"routes.yaml": `appRoutes:
  - displayName: Payroll
    appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    from: https://payroll.contoso.com/
    to: [http://10.20.0.11:8080, "ftp://10.20.0.12"]
`}, "routes.yaml: appRoutes[0].to[1]: must be an http or https URL without user, query or fragment"},
		{"RouteRuleWithoutDataAction", map[string]string{"routes.yaml": `appRoutes:
  - displayName: Payroll
    appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    from: https://payroll.contoso.com/
    to: [http://10.20.0.11:8080]
    rules:
      - pathPrefix: /runs
`}, "routes.yaml: appRoutes[0].rules[0].dataAction: must be a data action such as Verity.Apps/apps/access/action"},
		{"RouteUnknownField", map[string]string{"routes.yaml": `appRoutes:
  - displayName: Payroll
    appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    from: https://payroll.contoso.com/
    upstream: http://10.20.0.11:8080
`}, "routes.yaml: appRoutes[0].upstream: unknown field"},
		{"DuplicateRoute", map[string]string{"routes.yaml": `appRoutes:
  - displayName: Payroll
    appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    from: https://payroll.contoso.com/App/
    to: [http://10.20.0.11:8080]
  - displayName: Payroll, lower case
    appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    from: https://payroll.contoso.com/app/
    to: [http://10.20.0.11:8080]
  - displayName: Payroll again
    appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    from: HTTPS://Payroll.Contoso.com:443/App
    to: [http://10.20.0.12:8080]
`}, `routes.yaml: appRoutes[2].from: duplicate app route "HTTPS://Payroll.Contoso.com:443/App", first at routes.yaml: appRoutes[0]`},
		{"SeveralProblems", map[string]string{"users.yaml": `users:
  - userPrincipalName: alice
    displayName: Alice
  - userPrincipalName: bob@contoso.com
    displayName: ""
`}, `users.yaml: users[0].userPrincipalName: must have the form local@domain with exactly one @
users.yaml: users[1].displayName: required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := writeFiles(t, tc.files)
			got := planError(t, storetest.OpenSQLite(t), dir)
			got = strings.ReplaceAll(got, dir+string(filepath.Separator), "")
			if got != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// planError parses dir and plans it against st, and returns the error.
func planError(t *testing.T, st store.Store, dir string) string {
	t.Helper()
	m, err := ParseFiles([]string{dir})
	if err == nil {
		_, err = Diff(context.Background(), st, m, Options{Prune: true})
	}
	if err == nil {
		t.Fatal("no error")
	}
	return err.Error()
}

// TestPruneRefusesToOrphan checks that pruning never leaves a hand-made
// object pointing at a deleted principal, nor removes the last Owner.
func TestPruneRefusesToOrphan(t *testing.T) {
	st := storetest.OpenSQLite(t)
	apply(t, st, parse(t, exampleTenant), Options{})
	s := snapshot(t, st)
	heidi, _ := s.UserByUPN("heidi@contoso.com")
	handMade(t, st, groupObject(t, "Alumni", heidi.ID))

	m := parse(t, exampleTenant)
	m.Users = removeWhere(m.Users, func(u directory.User) bool { return u.UserPrincipalName == "heidi@contoso.com" })
	_, err := Diff(context.Background(), st, m, Options{Prune: true})
	want := `pruning would delete user heidi@contoso.com, still a member of group "Alumni", which the manifest does not list`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}

	m = parse(t, exampleTenant)
	m.RoleAssignments = removeWhere(m.RoleAssignments, func(a RoleAssignment) bool { return a.Role == "Owner" && a.Scope == "/" })
	_, err = Diff(context.Background(), st, m, Options{Prune: true})
	want = "the plan would leave no enabled user with the Owner role at scope /, directly or through a group, " +
		"locking everyone out of the admin API; keep one in the manifest"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if _, err := Diff(context.Background(), st, m, Options{}); err != nil {
		t.Errorf("without prune the Owner stays: %v", err)
	}

	// Owner goes to Platform Engineers, which holds alice and, through
	// SRE, bob and ivan: disabling all three leaves no one.
	m = parse(t, exampleTenant)
	for i, u := range m.Users {
		switch u.UserPrincipalName {
		case "alice@contoso.com", "bob@contoso.com", "ivan@contoso.com":
			off := false
			m.Users[i].AccountEnabled = &off
		}
	}
	if _, err = Diff(context.Background(), st, m, Options{}); err == nil || err.Error() != want {
		t.Errorf("disabling every owner: error %v, want %s", err, want)
	}
	m.Users[2].AccountEnabled = nil // ivan stays, through two levels of groups
	if _, err = Diff(context.Background(), st, m, Options{}); err != nil {
		t.Errorf("one owner left: %v", err)
	}

	// A manifest reference to an object that pruning deletes says so.
	m = parse(t, exampleTenant)
	m.Users = removeWhere(m.Users, func(u directory.User) bool { return u.UserPrincipalName == "grace@contoso.com" })
	_, err = Diff(context.Background(), st, m, Options{Prune: true})
	want = `groups.yaml: groups[5].members.users[0]: user "grace@contoso.com" was made by an earlier apply and is no longer in the manifest, so pruning deletes it`
	if err == nil || strings.ReplaceAll(err.Error(), exampleTenant+"/", "") != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func groupObject(t *testing.T, name string, members ...string) store.Object {
	t.Helper()
	g := &directory.Group{GraphGroup: directory.GraphGroup{ID: directory.NewID(), DisplayName: name}, Members: members}
	g.Normalize()
	o, err := directory.Groups.Object(g)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestNoFollowOnErrors checks that an invalid entry is reported once, not
// again by everything that refers to it.
func TestNoFollowOnErrors(t *testing.T) {
	st := storetest.OpenSQLite(t)
	apply(t, st, parse(t, exampleTenant), Options{})
	dir := copyExamples(t, nil)
	users := readExample(t, "users.yaml")
	users = strings.Replace(users, "jobTitle: Site Reliability Engineer\n    department: Engineering\n    usageLocation: US",
		"jobTitle: Site Reliability Engineer\n    department: Engineering\n    usageLocation: usa", 1)
	if err := os.WriteFile(filepath.Join(dir, "users.yaml"), []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(planError(t, st, dir), dir+string(filepath.Separator), "")
	want := `users.yaml: users[1].usageLocation: must be an ISO 3166-1 alpha-2 country code of two upper-case letters, not "usa"`
	if got != want {
		t.Errorf("error:\n%s\nwant:\n%s", got, want)
	}
}

// TestKeyTaken checks a rename by id onto a name that an object the
// manifest does not list already has.
func TestKeyTaken(t *testing.T) {
	st := storetest.OpenSQLite(t)
	alice, bob := userObject(t, "alice@contoso.com", "Alice"), userObject(t, "bob@contoso.com", "Bob")
	handMade(t, st, alice, bob)
	m := &Manifest{Users: []directory.User{{ID: alice.ID, UserPrincipalName: "Bob@contoso.com", DisplayName: "Alice"}}}
	_, err := Diff(context.Background(), st, m, Options{Prune: true})
	want := `users[0].userPrincipalName: userPrincipalName "bob@contoso.com" is taken by another user (id ` + bob.ID + `) that the manifest does not list`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}
