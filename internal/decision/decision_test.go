package decision_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func put(t testing.TB, st store.Store, objs ...store.Object) int64 {
	t.Helper()
	rev, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func user(t testing.TB, id, upn string, enabled bool) store.Object {
	u := &directory.User{ID: id, UserPrincipalName: upn, DisplayName: upn, AccountEnabled: &enabled}
	u.Normalize()
	o, err := directory.Users.Object(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func group(t testing.TB, id, name string, members ...string) store.Object {
	g := &directory.Group{GraphGroup: directory.GraphGroup{ID: id, DisplayName: name}, Members: members}
	g.Normalize()
	o, err := directory.Groups.Object(g)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func assign(t testing.TB, id, principal, role, scope string) store.Object {
	a := rbac.Assignment{ID: id, PrincipalID: principal, RoleDefinitionID: role, Scope: scope}
	a.Normalize()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return store.Object{Kind: rbac.Kind, ID: id, Body: b}
}

const (
	alice  = "a0000000-0000-4000-8000-000000000001"
	bob    = "b0000000-0000-4000-8000-000000000002"
	carol  = "c0000000-0000-4000-8000-000000000003"
	dave   = "d0000000-0000-4000-8000-000000000004"
	outer  = "e0000000-0000-4000-8000-000000000005"
	inner  = "f0000000-0000-4000-8000-000000000006"
	ghost  = "90000000-0000-4000-8000-000000000009"
	aOwner = "10000000-0000-4000-8000-000000000011"
	aRead  = "10000000-0000-4000-8000-000000000012"
	aScope = "10000000-0000-4000-8000-000000000013"
	aGhost = "10000000-0000-4000-8000-000000000014"
)

func TestAdminAccess(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	put(t, st,
		user(t, alice, "alice@contoso.com", true), user(t, bob, "bob@contoso.com", true),
		user(t, carol, "carol@contoso.com", false), user(t, dave, "dave@contoso.com", true),
		group(t, outer, "Admins", inner), group(t, inner, "Inner", bob, carol),
		assign(t, aOwner, outer, "Owner", "/"), assign(t, aRead, alice, "Reader", "/"),
		assign(t, aScope, dave, "Owner", "/apps/payroll"), assign(t, aGhost, ghost, "Owner", "/"),
	)
	snap, err := decision.Build(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		principal string
		want      decision.AdminLevel
	}{
		{"direct Reader", alice, decision.ReadAccess},
		{"Owner through nested groups", bob, decision.WriteAccess},
		{"disabled account gets nothing", carol, decision.NoAccess},
		{"an assignment below / does not reach the admin API", dave, decision.NoAccess},
		{"a deleted principal gets nothing", ghost, decision.NoAccess},
	} {
		if got := snap.AdminAccess(tt.principal); got != tt.want {
			t.Errorf("%s: AdminAccess = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestLiveFollowsTheStore(t *testing.T) {
	t.Parallel()
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			st := e.open(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			live, err := decision.NewLive(ctx, st, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			go live.Run(ctx, time.Hour) // only the change feed can trigger a rebuild
			rev := put(t, st, user(t, alice, "alice@contoso.com", true), assign(t, aOwner, alice, "Owner", "/"))
			deadline := time.Now().Add(10 * time.Second)
			for live.Current().Revision() < rev {
				if time.Now().After(deadline) {
					t.Fatalf("snapshot stuck at %d; store at %d", live.Current().Revision(), rev)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if live.Current().AdminAccess(alice) != decision.WriteAccess {
				t.Fatal("new snapshot lacks the write")
			}
			// WaitFor serves read-your-writes even before the feed delivers.
			rev = put(t, st, user(t, alice, "alice@contoso.com", false))
			snap, err := live.WaitFor(ctx, rev)
			if err != nil || snap.Revision() < rev || snap.AdminAccess(alice) != decision.NoAccess {
				t.Fatalf("WaitFor = %v, %v", snap, err)
			}
		})
	}
}

func BenchmarkAdminAccess(b *testing.B) {
	st := storetest.OpenSQLite(b)
	put(b, st, user(b, bob, "bob@contoso.com", true), group(b, outer, "Admins", inner), group(b, inner, "Inner", bob),
		assign(b, aOwner, outer, "Owner", "/"))
	snap, err := decision.Build(context.Background(), st)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if snap.AdminAccess(bob) != decision.WriteAccess {
			b.Fatal("wrong decision")
		}
	}
}

// TestAzureRolesOnTheAdminAPI: Verity's own resources are guarded by the
// RBAC engine with Azure's built-in roles meaning what they mean in Azure:
// a data-plane role reaches nothing, and Contributor manages resources but
// cannot grant roles (its NotActions cover Microsoft.Authorization writes).
func TestAzureRolesOnTheAdminAPI(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	put(t, st, user(t, alice, "alice@contoso.com", true), user(t, bob, "bob@contoso.com", true),
		assign(t, aOwner, alice, "Storage Blob Data Reader", "/"), assign(t, aRead, bob, "Contributor", "/"))
	snap, err := decision.Build(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	check := func(who, action, scope string) bool {
		var d rbac.Decision
		if err := snap.Authorize(who, action, scope, time.Now(), &d); err != nil {
			t.Fatal(err)
		}
		return d.Allowed
	}
	if check(alice, "Verity.Directory/users/read", "/directory/users") || snap.AdminAccess(alice) != decision.NoAccess {
		t.Fatal("a data-plane role reaches the admin API")
	}
	if !check(bob, "Verity.Directory/users/write", "/directory/users/"+alice) {
		t.Fatal("Contributor cannot manage users")
	}
	if check(bob, decision.ActionGrantRoles, "/") || snap.AdminAccess(bob) != decision.ReadAccess {
		t.Fatal("Contributor can grant roles")
	}
}
