package apply

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

const routeManifest = `applications:
  - appId: 8c2058e9-7de6-4135-bf2f-ad63e6b7dd86
    displayName: Contoso Payroll
appRoutes:
  - displayName: Contoso Payroll
    appId: 8C2058E9-7DE6-4135-BF2F-AD63E6B7DD86
    from: HTTPS://Payroll.Contoso.com:443
    to: [http://10.20.0.11:8080]
    publicPaths: [/healthz]
    rules:
      - methods: [post]
        pathPrefix: /runs
        dataAction: Verity.Apps/apps/payroll/runs/write/action
`

// TestAppRoutesApply: an apply creates a route keyed by its normalised
// from URL, a second apply changes nothing, a changed property is an
// update of that property alone, the export applies unchanged, and
// pruning deletes the route.
func TestAppRoutesApply(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		const from = "https://payroll.contoso.com/"
		m, err := Parse("routes.yaml", []byte(routeManifest))
		if err != nil {
			t.Fatal(err)
		}
		plan, rev := apply(t, st, m, Options{})
		if s := plan.String(); !strings.Contains(s, "+ create appRoute "+from+"\n") {
			t.Fatalf("plan:\n%s", s)
		}
		obj, err := st.GetByKey(ctx, directory.KindAppRoute, from)
		if err != nil {
			t.Fatal(err)
		}
		r, err := directory.AppRoutes.FromObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		if obj.ManagedBy != ManagedBy || r.AppID != "8c2058e9-7de6-4135-bf2f-ad63e6b7dd86" || r.Rules[0].Methods[0] != "POST" || r.CreatedDateTime == nil {
			t.Fatalf("stored route %s (managed by %q)", obj.Body, obj.ManagedBy)
		}
		if m.AppRoutes[0].From != "HTTPS://Payroll.Contoso.com:443" {
			t.Errorf("the apply normalised the caller's manifest: %q", m.AppRoutes[0].From)
		}
		if got, ok := snapshot(t, st).RouteFor("payroll.contoso.com", "/runs/2026-11"); !ok || got.ID != obj.ID {
			t.Errorf("the snapshot does not route to it: %v %v", got, ok)
		}

		if again, rev2 := apply(t, st, m, Options{}); !again.Empty() || rev2 != rev {
			t.Errorf("the same manifest again (revision %d → %d):\n%s", rev, rev2, again)
		}

		m.AppRoutes[0].To = []string{"http://10.20.0.11:8080", "http://10.20.0.12:8080"}
		plan, _ = apply(t, st, m, Options{})
		if want := "~ update appRoute " + from + " (to)\n\nPlan: 0 to create, 1 to update, 0 to delete."; plan.String() != want {
			t.Errorf("plan:\n%s\nwant:\n%s", plan, want)
		}
		obj2, _ := st.Get(ctx, directory.KindAppRoute, obj.ID)
		if r2, _ := directory.AppRoutes.FromObject(obj2); r2 == nil || len(r2.To) != 2 || !r2.CreatedDateTime.Equal(*r.CreatedDateTime) {
			t.Errorf("after the update: %s", obj2.Body)
		}

		exported := export(t, st)
		if !bytes.Contains(exported, []byte("appRoutes:")) || !bytes.Contains(exported, []byte("from: "+from)) || !bytes.Contains(exported, []byte("id: "+obj.ID)) {
			t.Fatalf("export:\n%s", exported)
		}
		back, err := Parse("export.yaml", exported)
		if err != nil {
			t.Fatal(err)
		}
		if plan, _ := apply(t, st, back, Options{Prune: true}); !plan.Empty() {
			t.Errorf("applying the export:\n%s", plan)
		}

		plan, _ = apply(t, st, &Manifest{Applications: m.Applications}, Options{Prune: true})
		if want := "- delete appRoute " + from + "\n\nPlan: 0 to create, 0 to update, 1 to delete."; plan.String() != want {
			t.Errorf("prune plan:\n%s\nwant:\n%s", plan, want)
		}
		if _, err := st.Get(ctx, directory.KindAppRoute, obj.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the pruned route is still stored: %v", err)
		}
	})
}

// TestAppRoutesMatchedByFrom: a manifest route without an id is the
// stored route with the same from URL however it is written, and updating
// a hand-made route leaves it hand-made; moving a route by id onto the
// URL of another that the manifest does not list is refused, naming from.
func TestAppRoutesMatchedByFrom(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	route := func(id, from string) store.Object {
		r := &directory.AppRoute{ID: id, DisplayName: "By hand", AppID: "8c2058e9-7de6-4135-bf2f-ad63e6b7dd86", From: from, To: []string{"http://10.20.0.99:8080"}}
		r.Normalize()
		obj, err := directory.AppRoutes.Object(r)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	payroll, reports := route("a0000000-0000-4000-8000-0000000000f1", "https://payroll.contoso.com/"), route("a0000000-0000-4000-8000-0000000000f2", "https://reports.contoso.com/")
	handMade(t, st, payroll, reports)
	m, err := Parse("routes.yaml", []byte(routeManifest))
	if err != nil {
		t.Fatal(err)
	}
	m.Applications = nil
	plan, _ := apply(t, st, m, Options{Prune: true})
	if want := "~ update appRoute https://payroll.contoso.com/ (displayName, publicPaths, rules, to)\n\nPlan: 0 to create, 1 to update, 0 to delete."; plan.String() != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", plan, want)
	}
	if o, _ := st.Get(context.Background(), directory.KindAppRoute, payroll.ID); o.ManagedBy != "" || !bytes.Contains(o.Body, []byte("/runs")) {
		t.Errorf("the hand-made route after the apply: %s (managed by %q)", o.Body, o.ManagedBy)
	}

	m.AppRoutes[0].ID, m.AppRoutes[0].From = payroll.ID, "https://Reports.contoso.com"
	_, err = Diff(context.Background(), st, m, Options{})
	want := `routes.yaml: appRoutes[0].from: from "https://reports.contoso.com/" is taken by another app route (id ` + reports.ID + `) that the manifest does not list`
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant %s", err, want)
	}
}
