package pim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// scanCounter is a store that counts the reads of every eligibility (a
// List of the kind), in transactions too.
type scanCounter struct {
	store.Store
	scans atomic.Int64
}

func (c *scanCounter) count(kind string) {
	if kind == pim.EligibilityKind {
		c.scans.Add(1)
	}
}

func (c *scanCounter) List(ctx context.Context, kind string, opts store.ListOptions) ([]store.Object, error) {
	c.count(kind)
	return c.Store.List(ctx, kind, opts)
}

func (c *scanCounter) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) (int64, error) {
	return c.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error { return fn(ctx, countingTx{tx, c}) })
}

type countingTx struct {
	store.Tx
	c *scanCounter
}

func (t countingTx) List(ctx context.Context, kind string, opts store.ListOptions) ([]store.Object, error) {
	t.c.count(kind)
	return t.Tx.List(ctx, kind, opts)
}

// storeLegacy writes eligibilities as a version before natural keys did:
// without a key.
func storeLegacy(t *testing.T, st store.Store, els ...pim.Eligibility) {
	t.Helper()
	if _, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, e := range els {
			body, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := tx.Create(ctx, store.Object{Kind: pim.EligibilityKind, ID: e.ID, Body: body}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// storedKey is the natural key the store holds for eligibility id.
func storedKey(t *testing.T, st store.Store, id string) string {
	t.Helper()
	o, err := st.Get(context.Background(), pim.EligibilityKind, id)
	if err != nil {
		t.Fatal(err)
	}
	return o.Key
}

// TestAdminAssignOneEligibility: a principal holds at most one
// eligibility for a role at a scope, as in ARM. A second AdminAssign is
// refused (RoleAssignmentExists) naming the one in force — or the one
// yet to start; another role or scope is another eligibility; one that
// has ended is replaced in the transaction that makes the new one, and
// its audit record says so. Before the first sweep (eligibilities found
// by reading them all) and after it (by key) alike.
func TestAdminAssignOneEligibility(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		sweep bool
	}{{"before the first sweep", false}, {"after the sweep", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, st, c := setup(t)
			if tc.sweep {
				if _, _, err := s.Sweep(ctx); err != nil {
					t.Fatal(err)
				}
			}
			assign := func(principal, role, scope string, start *time.Time, d time.Duration) (pim.Request, error) {
				return s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: principal, RoleDefinitionID: role, Scope: scope,
					ScheduleInfo: pim.Schedule{StartDateTime: start, Expiration: pim.Expiration{Duration: dur(d)}}})
			}
			first := eligible(t, s, "alice", 30)
			_, err := assign("alice", "Contributor", scope, nil, 10*24*time.Hour)
			if !errors.Is(err, pim.ErrEligibilityExists) || !errors.Is(err, pim.ErrAlreadyActive) || !strings.Contains(err.Error(), first.TargetID) {
				t.Fatalf("a second eligibility: %v", err)
			}
			later := c.Now().Add(7 * 24 * time.Hour)
			bob, err := assign("bob", contributor, scope, &later, 30*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := assign("bob", contributor, scope, nil, time.Hour); !errors.Is(err, pim.ErrEligibilityExists) ||
				!strings.Contains(err.Error(), bob.TargetID) || !strings.Contains(err.Error(), "from "+later.Format(time.RFC3339)) {
				t.Fatalf("beside one yet to start: %v", err)
			}
			for _, other := range [][2]string{{"Reader", scope}, {contributor, "/apps/other"}} {
				if _, err := assign("alice", other[0], other[1], nil, time.Hour); err != nil {
					t.Fatalf("%s at %s: %v", other[0], other[1], err)
				}
			}
			if tc.sweep && storedKey(t, st, first.TargetID) == "" {
				t.Fatal("a new eligibility without its natural key")
			}

			// Carol's ends; a new one replaces it.
			ended := eligible(t, s, "carol", 1)
			c.Add(2 * 24 * time.Hour)
			got, err := assign("carol", contributor, scope, nil, 30*24*time.Hour)
			if err != nil || got.Status != pim.StatusProvisioned || got.TargetID == ended.TargetID {
				t.Fatalf("after the end: %+v %v", got, err)
			}
			els, err := pim.Eligibilities(ctx, st, "carol")
			if err != nil || len(els) != 1 || els[0].ID != got.TargetID {
				t.Fatalf("carol's eligibilities %+v %v", els, err)
			}
			var recorded bool
			for _, d := range auditOf(t, st, "pim.adminAssign") {
				if d["targetScheduleId"] == got.TargetID {
					ids, _ := d["replacedScheduleIds"].([]any)
					recorded = len(ids) == 1 && ids[0] == ended.TargetID
				} else if d["replacedScheduleIds"] != nil {
					t.Errorf("an assignment that replaced nothing says it did: %v", d)
				}
			}
			if !recorded {
				t.Fatalf("the audit record does not name the eligibility replaced: %v", auditOf(t, st, "pim.adminAssign"))
			}
			if r, err := activate(s, pim.Caller{ID: "carol", MFA: true}, time.Hour, "payroll"); err != nil || r.LinkedEligibilityID != got.TargetID {
				t.Fatalf("carol activates: %+v %v", r, err)
			}
		})
	}
}

// TestActivateByKey: once the sweep has found every eligibility keyed, an
// activation finds its eligibility — the user's own, or a group's of the
// 50 the user is in — and an extension its own, by key, without reading
// every eligibility.
func TestActivateByKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := storetest.OpenSQLite(t)
	st := &scanCounter{Store: base}
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	s := pim.New(st)
	s.Now = c.Now
	var groups []string
	for i := range 50 {
		groups = append(groups, fmt.Sprint("g", i))
	}
	s.Groups = func(id string) []string {
		if id == "erin" {
			return groups
		}
		return nil
	}
	if _, _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		eligible(t, s, fmt.Sprint("u", i), 30)
	}
	group := eligible(t, s, "g49", 30)
	own := eligible(t, s, "alice", 10)
	st.scans.Store(0)

	r, err := activate(s, pim.Caller{ID: "erin", MFA: true}, time.Hour, "through the last group")
	if err != nil || r.LinkedEligibilityID != group.TargetID {
		t.Fatalf("erin activates through g49: %+v %v", r, err)
	}
	if _, err := activate(s, pim.Caller{ID: "frank", MFA: true}, time.Hour, "nothing"); !errors.Is(err, pim.ErrNotEligible) {
		t.Fatalf("frank, eligible for nothing: %v", err)
	}
	x, err := s.Submit(ctx, alice, pim.Request{RequestType: pim.SelfExtend, RoleDefinitionID: contributor, Scope: scope, Justification: "payroll",
		ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: dur(20 * 24 * time.Hour)}}})
	if err != nil || x.LinkedEligibilityID != own.TargetID {
		t.Fatalf("alice asks to extend: %+v %v", x, err)
	}
	if got, err := s.Decide(ctx, admin, x.ID, true, "ok"); err != nil || got.Status != pim.StatusProvisioned {
		t.Fatalf("the extension approved: %+v %v", got, err)
	}
	if storedKey(t, base, own.TargetID) == "" {
		t.Fatal("the extension took the eligibility's key away")
	}
	if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminRemove, PrincipalID: "g49", RoleDefinitionID: contributor, Scope: scope}); err != nil {
		t.Fatal(err)
	}
	if n := st.scans.Load(); n != 0 {
		t.Fatalf("every eligibility read %d times", n)
	}
	if _, err := activate(s, pim.Caller{ID: "erin", MFA: true}, time.Hour, "again"); !errors.Is(err, pim.ErrNotEligible) {
		t.Fatalf("after g49's removal: %v", err)
	}
}

// TestLegacyEligibilities, on both engines: eligibilities stored without
// a natural key, by an earlier version, are found before any sweep. Two
// nodes sweeping at once give them their keys; of two made for the same
// principal, role and scope, the older gets it and the newer is reported
// once to be removed — which an administrator does by naming it — and
// meanwhile both are still found, and either may be extended. A sweep
// that finds every eligibility keyed writes nothing; from then on lookups
// read by key alone, so one written without a key later (by a node of an
// earlier version) is found once the next sweep has keyed it, and a
// duplicate written so is found again once the sweep has reported it.
func TestLegacyEligibilities(t *testing.T) {
	t.Parallel()
	for _, eng := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"sqlite", storetest.SQLitePath}, {"postgres", storetest.PostgresDSN}} {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := eng.dsn(t)
			st, other := storetest.OpenDSN(t, dsn), storetest.OpenDSN(t, dsn)
			c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
			node := func(st store.Store) *pim.Service {
				s := pim.New(st)
				s.Now = c.Now
				s.Groups = func(id string) []string {
					if id == "erin" {
						return []string{"g-payroll"}
					}
					return nil
				}
				return s
			}
			s, s2 := node(st), node(other)
			t0, end := c.Now(), c.Now().Add(30*24*time.Hour)
			role, _ := rbac.LookupRole(contributor) // as AdminAssign stores it
			legacy := func(id, principal string, created time.Duration) pim.Eligibility {
				return pim.Eligibility{ID: id, PrincipalID: principal, RoleDefinitionID: role.ID, Scope: scope, RoleKind: pim.RoleKindRBAC,
					StartDateTime: t0.Add(-created), EndDateTime: &end, CreatedBy: "admin", CreatedDateTime: t0.Add(-created)}
			}
			// Dave's newer one comes first in id order: the sweep goes by age.
			storeLegacy(t, st, legacy("e-alice", "alice", 30*24*time.Hour), legacy("e-group", "g-payroll", 20*24*time.Hour),
				legacy("e-dave-2", "dave", 60*24*time.Hour), legacy("e-dave-1", "dave", 10*24*time.Hour))

			if r, err := activate(s, alice, time.Hour, "before the sweep"); err != nil || r.LinkedEligibilityID != "e-alice" {
				t.Fatalf("alice before the sweep: %+v %v", r, err)
			}
			if r, err := activate(s, pim.Caller{ID: "erin", MFA: true}, time.Hour, "through the group"); err != nil || r.LinkedEligibilityID != "e-group" {
				t.Fatalf("erin before the sweep: %+v %v", r, err)
			}
			if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: "alice", RoleDefinitionID: contributor, Scope: scope}); !errors.Is(err, pim.ErrEligibilityExists) ||
				!strings.Contains(err.Error(), "e-alice") {
				t.Fatalf("a second eligibility beside a legacy one: %v", err)
			}

			var wg sync.WaitGroup
			for _, n := range []*pim.Service{s, s2} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, _, err := n.Sweep(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			for _, id := range []string{"e-alice", "e-group", "e-dave-2"} {
				if storedKey(t, st, id) == "" {
					t.Errorf("%s has no key after the sweep", id)
				}
			}
			if k := storedKey(t, st, "e-dave-1"); k != "" {
				t.Fatalf("the newer duplicate took the key %q", k)
			}
			if _, _, err := s2.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			dups := auditOf(t, st, pim.DuplicateEligibilityAction)
			if len(dups) != 1 || dups[0]["_target"] != "/pim/eligibilities/e-dave-1" || dups[0]["keptScheduleId"] != "e-dave-2" ||
				dups[0]["_actor"] != pim.AuditActor || dups[0]["principalId"] != "dave" {
				t.Fatalf("the duplicate's audit records %v", dups)
			}
			if r, err := activate(s, pim.Caller{ID: "dave", MFA: true}, time.Hour, "beside a duplicate"); err != nil {
				t.Fatalf("dave activates: %+v %v", r, err)
			}
			// Either may be extended meanwhile; the duplicate stays without a key.
			if x, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminExtend, PrincipalID: "dave", RoleDefinitionID: contributor, Scope: scope,
				LinkedEligibilityID: "e-dave-1", ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: dur(24 * time.Hour)}}}); err != nil ||
				x.TargetID != "e-dave-1" || storedKey(t, st, "e-dave-1") != "" {
				t.Fatalf("the duplicate extended: %+v %v", x, err)
			}
			if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminRemove, PrincipalID: "dave", RoleDefinitionID: contributor, Scope: scope,
				LinkedEligibilityID: "e-dave-1"}); err != nil {
				t.Fatal(err)
			}
			els, _ := pim.Eligibilities(ctx, st, "dave")
			if len(els) != 1 || els[0].ID != "e-dave-2" {
				t.Fatalf("dave's eligibilities after removing the duplicate %+v", els)
			}

			if _, _, err := s.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if marks, _ := st.List(ctx, pim.DuplicateEligibilityKind, store.ListOptions{}); len(marks) != 0 {
				t.Fatalf("marks of duplicates left %+v", marks)
			}
			rev, _ := st.Revision(ctx)
			if _, _, err := s2.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if now, _ := st.Revision(ctx); now != rev {
				t.Fatalf("a sweep with every eligibility keyed wrote revisions %d to %d", rev, now)
			}

			storeLegacy(t, other, legacy("e-frank", "frank", 0))
			frank := pim.Caller{ID: "frank", MFA: true}
			if _, err := activate(s, frank, time.Hour, "before its key"); !errors.Is(err, pim.ErrNotEligible) {
				t.Fatalf("a lookup still reads every eligibility: %v", err)
			}
			if _, _, err := s2.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if r, err := activate(s, frank, time.Hour, "keyed"); err != nil || r.LinkedEligibilityID != "e-frank" {
				t.Fatalf("frank after the sweep: %+v %v", r, err)
			}
			// A duplicate written so cannot take the key: it is reported, and
			// found again, so that the administrator can remove it.
			storeLegacy(t, other, legacy("e-frank-2", "frank", 0))
			if _, _, err := s2.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			if dups := auditOf(t, st, pim.DuplicateEligibilityAction); len(dups) != 2 || dups[0]["keptScheduleId"] != "e-frank" {
				t.Fatalf("the duplicate's audit records %v", dups)
			}
			if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminRemove, PrincipalID: "frank", RoleDefinitionID: contributor, Scope: scope,
				LinkedEligibilityID: "e-frank-2"}); err != nil {
				t.Fatalf("removing frank's duplicate: %v", err)
			}
			if rm := auditOf(t, st, "pim.adminRemove"); len(rm) != 2 || rm[1]["targetScheduleId"] != "e-dave-1" || rm[0]["targetScheduleId"] != "e-frank-2" {
				t.Errorf("removal records %v", rm)
			}
		})
	}
}
