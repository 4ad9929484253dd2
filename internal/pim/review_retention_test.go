package pim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// pruneCounter is a real store that counts, per write transaction, the
// decision items it deletes; its first gate Updates wait for each other,
// so that that many sweeps have all read an instance before any of them
// removes it.
type pruneCounter struct {
	store.Store
	mu      sync.Mutex
	gate    int
	release chan struct{}
	deletes []int // decision items deleted, per transaction that deleted any
}

func (c *pruneCounter) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) (int64, error) {
	c.mu.Lock()
	wait := c.gate > 0
	if wait {
		c.gate--
		if c.gate == 0 {
			close(c.release)
		}
	}
	c.mu.Unlock()
	if wait {
		select {
		case <-c.release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return c.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		ct := &pruneCountingTx{Tx: tx}
		err := fn(ctx, ct)
		if err == nil && ct.items > 0 {
			c.mu.Lock()
			c.deletes = append(c.deletes, ct.items)
			c.mu.Unlock()
		}
		return err
	})
}

type pruneCountingTx struct {
	store.Tx
	items int
}

func (t *pruneCountingTx) Delete(ctx context.Context, kind, id string) error {
	if kind == pim.ReviewItemKind {
		t.items++
	}
	return t.Tx.Delete(ctx, kind, id)
}

// pruneRecords are the accessReview.prune audit records, newest first.
func (e *reviewEnv) pruneRecords() []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditQuery{Action: "accessReview.prune", Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// TestReviewRetention, on both engines: an instance applied longer ago
// than the retention loses its decision items, in transactions of at
// most 1,000, and then itself, with one accessReview.prune record that
// counts them — even with two nodes sweeping at once; its definition
// still says Completed and what was pruned. One a little younger is kept,
// as are an instance in progress and a completed one whose denial waits
// for an administrator. A sweep after that does nothing.
func TestReviewRetention(t *testing.T) {
	t.Parallel()
	for _, eng := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := eng.open(t)
			e := newReviewEnv(t, st)
			const retention = 30 * 24 * time.Hour
			e.rv.Retention = retention
			e.people()
			const held = 2345 // three batches and some
			objs := make([]store.Object, 0, held+1)
			for i := range held {
				objs = append(objs, e.assignment(uid(10000+i), who.alice, "Reader", fmt.Sprintf("%s/r%04d", payrollScope, i), schedule.Schedule{}))
			}
			objs = append(objs, e.assignment(uid(101), who.bob, "Reader", "/apps/other", schedule.Schedule{}))
			e.put(objs...)
			big := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
				d.DisplayName, d.Settings.InstanceDurationInDays, d.Settings.AutoApplyDecisionsEnabled = "Payroll", 5, true
			}))
			open := e.create(e.definition(pim.ReviewScope{ResourceScope: "/apps/other"}, func(d *pim.ReviewDefinition) {
				d.DisplayName, d.Settings.InstanceDurationInDays = "Other, long", 180
			}))
			pending := e.create(e.definition(pim.ReviewScope{ResourceScope: "/apps/other"}, func(d *pim.ReviewDefinition) {
				d.DisplayName, d.Settings.InstanceDurationInDays = "Other, denied", 1
				d.Settings.DefaultDecisionEnabled, d.Settings.DefaultDecision = true, pim.DecisionDeny
			}))
			if n := e.sweep(); n.Started != 3 {
				t.Fatalf("first sweep %+v", n)
			}
			inst := e.instance(big.ID)
			if got := len(e.items(inst.ID)); got != held {
				t.Fatalf("%d items; want %d", got, held)
			}
			e.c.Add(5 * 24 * time.Hour)
			if n := e.sweep(); n.Completed != 2 || n.Applied != 1 || n.Pruned != 0 {
				t.Fatalf("sweep at the end %+v", n)
			}
			applied := e.instance(big.ID)
			if applied.Status != pim.ReviewApplied || applied.AppliedDateTime == nil {
				t.Fatalf("instance %+v", applied)
			}
			if got := e.instance(pending.ID); got.Status != pim.ReviewCompleted || got.Summary.Denied != 1 {
				t.Fatalf("the instance with a denial to apply %+v %+v", got, got.Summary)
			}

			// An hour short of the retention, nothing goes.
			e.c.Add(applied.AppliedDateTime.Add(retention - time.Hour).Sub(e.c.Now()))
			if n := e.sweep(); n != (pim.ReviewSweep{}) {
				t.Fatalf("a sweep before the retention did %+v", n)
			}
			if got := len(e.items(inst.ID)); got != held || len(e.pruneRecords()) != 0 {
				t.Fatalf("pruned early: %d items left, records %v", got, e.pruneRecords())
			}

			// Then two nodes prune at once: each has read the instance
			// expired before either writes.
			e.c.Add(time.Hour)
			counted := &pruneCounter{Store: st, gate: 2, release: make(chan struct{})}
			sweeps := make([]pim.ReviewSweep, 2)
			var wg sync.WaitGroup
			for i := range sweeps {
				svc := pim.New(counted)
				svc.Now = e.c.Now
				rv := pim.NewReviews(svc, ownerGuard)
				rv.Retention = retention
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := rv.Sweep(ctx)
					if err != nil {
						t.Error(err)
					}
					sweeps[i] = n
				}()
			}
			wg.Wait()
			if sweeps[0].Pruned+sweeps[1].Pruned != 1 {
				t.Fatalf("sweeps %+v", sweeps)
			}
			total := 0
			for _, n := range counted.deletes {
				if n > 1000 {
					t.Errorf("a transaction deleted %d items; at most 1,000", n)
				}
				total += n
			}
			if total != held || len(counted.deletes) < 3 {
				t.Errorf("item deletions per transaction %v; want %d items, in at least 3", counted.deletes, held)
			}
			if len(e.items(inst.ID)) != 0 || e.exists(pim.ReviewInstanceKind, inst.ID) {
				t.Fatal("the instance or its items outlive the retention")
			}
			if _, err := pim.GetReviewInstance(ctx, st, inst.ID); !errors.Is(err, pim.ErrReviewNotFound) {
				t.Fatalf("the pruned instance: %v", err)
			}
			recs := e.pruneRecords()
			if len(recs) != 1 || recs[0].Actor != pim.ReviewActor || recs[0].Target != "/accessReviews/instances/"+inst.ID {
				t.Fatalf("prune records %+v", recs)
			}
			var details struct {
				DefinitionID string `json:"definitionId"`
				Items        int    `json:"items"`
				Status       string `json:"status"`
			}
			if err := json.Unmarshal(recs[0].Details, &details); err != nil || details.DefinitionID != big.ID || details.Items != held ||
				details.Status != pim.ReviewApplied {
				t.Fatalf("the prune record says %s (%v)", recs[0].Details, err)
			}

			// The definition still reads Completed, and says what went.
			got, err := pim.GetReview(ctx, st, big.ID, e.c.Now())
			if err != nil || got.Status != pim.ReviewCompleted || got.Pruned == nil || !got.Pruned.LastDateTime.Equal(e.c.Now()) ||
				*got.Pruned != (pim.ReviewPruned{Instances: 1, Items: held, LastOccurrence: 0, Started: true, LastDateTime: got.Pruned.LastDateTime}) {
				t.Fatalf("definition %+v %+v %v", got, got.Pruned, err)
			}
			list, err := pim.ListReviews(ctx, st, e.c.Now())
			if err != nil || len(list) != 3 {
				t.Fatalf("list %+v %v", list, err)
			}
			for _, d := range list {
				want := map[string]string{big.ID: pim.ReviewCompleted, open.ID: pim.ReviewInProgress, pending.ID: pim.ReviewCompleted}[d.ID]
				if d.Status != want {
					t.Errorf("%s: %s; want %s", d.DisplayName, d.Status, want)
				}
			}

			// A year on, the long instance completes — and, ended longer
			// than the retention ago with nothing to apply, goes at the
			// next sweep. The one whose denial waits for an administrator
			// stays, however old, until it is applied.
			e.c.Add(365 * 24 * time.Hour)
			if n := e.sweep(); n.Completed != 1 || n.Pruned != 0 {
				t.Fatalf("a year on %+v", n)
			}
			if n := e.sweep(); n.Pruned != 1 {
				t.Fatalf("the long instance %+v", n)
			}
			e.c.Add(365 * 24 * time.Hour)
			if n := e.sweep(); n != (pim.ReviewSweep{}) {
				t.Fatalf("a sweep with nothing left to do did %+v", n)
			}
			if got := e.instance(pending.ID); got.Status != pim.ReviewCompleted || len(e.items(got.ID)) != 1 {
				t.Fatalf("the instance with a denial to apply was pruned: %+v", got)
			}
			if len(e.pruneRecords()) != 2 {
				t.Fatalf("prune records %v", e.pruneRecords())
			}
			if _, err := e.rv.Apply(ctx, pim.Identity{ID: "admin"}, e.instance(pending.ID).ID); err != nil {
				t.Fatal(err)
			}
			e.c.Add(retention - time.Minute)
			if n := e.sweep(); n.Pruned != 0 {
				t.Fatalf("just applied %+v", n)
			}
			e.c.Add(time.Minute)
			if n := e.sweep(); n.Pruned != 1 {
				t.Fatalf("applied a retention ago %+v", n)
			}
			if got := e.audited(); got["accessReview.prune "+pim.ReviewActor] != 3 {
				t.Fatalf("audit %v", got)
			}
		})
	}
}

// TestReviewRetentionInProgress: retention removes only what ended. An
// instance in progress is not touched however long it runs, nor one whose
// end — and the retention after it — passed while no node swept: that
// one completes first (its denial then waits for an administrator). An
// occurrence whose window passed unswept is stopped, and goes a
// retention after its stop.
func TestReviewRetentionInProgress(t *testing.T) {
	t.Parallel()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.rv.Retention = 24 * time.Hour
	e.people()
	e.put(e.assignment(uid(101), who.alice, "Reader", payrollScope, schedule.Schedule{}))
	long := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.InstanceDurationInDays = 180
	}))
	late := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.DefaultDecisionEnabled, d.Settings.DefaultDecision = true, pim.DecisionDeny
	}))
	missed := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.Recurrence.StartDate = "2026-12-01"
	}))
	if n := e.sweep(); n.Started != 2 {
		t.Fatalf("first sweep %+v", n)
	}
	e.c.Add(60 * 24 * time.Hour)
	if n := e.sweep(); n.Completed != 1 || n.Missed != 1 || n.Pruned != 0 {
		t.Fatalf("sixty days on %+v", n)
	}
	if n := e.sweep(); n != (pim.ReviewSweep{}) {
		t.Fatalf("the sweep after %+v", n) // retention counts from the stop
	}
	for _, c := range []struct {
		def    pim.ReviewDefinition
		status string
		items  int
	}{{long, pim.ReviewInProgress, 1}, {late, pim.ReviewCompleted, 1}, {missed, pim.ReviewStopped, 0}} {
		if got := e.instance(c.def.ID); got.Status != c.status || len(e.items(got.ID)) != c.items {
			t.Errorf("%s: %+v; want %s with %d items", c.def.DisplayName, got, c.status, c.items)
		}
	}
	e.c.Add(25 * time.Hour)
	if n := e.sweep(); n != (pim.ReviewSweep{Pruned: 1}) {
		t.Fatalf("a day after the stop %+v", n)
	}
	if insts, err := pim.ReviewInstances(context.Background(), e.st, missed.ID); err != nil || len(insts) != 0 {
		t.Fatalf("the stopped instance a day on %+v %v", insts, err)
	}
	if got := e.instance(long.ID); got.Status != pim.ReviewInProgress || len(e.items(got.ID)) != 1 {
		t.Fatalf("the instance in progress %+v", got)
	}
	if got := e.pruneRecords(); len(got) != 1 || got[0].Target != "/accessReviews/instances/"+missed.ID+".00000" {
		t.Fatalf("prune records %v", got)
	}
}

// TestReviewRetentionNumbering: pruning keeps a definition's status and
// numbering. A one-time review stopped on its first day is pruned while
// its window is still open: it stays Completed and does not run again. A
// weekly review whose one started instance is pruned stays InProgress,
// and its next instance is numbered on.
func TestReviewRetentionNumbering(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.rv.Retention = 30 * 24 * time.Hour
	e.people()
	e.put(e.assignment(uid(101), who.alice, "Reader", payrollScope, schedule.Schedule{}))
	once := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.InstanceDurationInDays = 180
	}))
	weekly := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.Recurrence = pim.Recurrence{Type: pim.RecurWeekly, StartDate: "2026-11-27"} // a Friday, for a day
		d.Settings.InstanceDurationInDays, d.Settings.AutoApplyDecisionsEnabled = 1, true
	}))
	if n := e.sweep(); n.Started != 2 {
		t.Fatalf("first sweep %+v", n)
	}
	first := e.instance(once.ID)
	if _, err := e.rv.Stop(ctx, pim.Identity{ID: "admin"}, first.ID); err != nil {
		t.Fatal(err)
	}
	e.c.Add(15 * time.Hour) // Saturday 00:00: the weekly one ends, the next is scheduled
	if n := e.sweep(); n.Completed != 1 || n.Applied != 1 || n.Scheduled != 1 {
		t.Fatalf("sweep at the first end %+v", n)
	}
	// 2026-12-29, a Tuesday: both are older than the retention; the weekly
	// review's second occurrence passed unswept, the next is the sixth.
	e.c.Add(time.Date(2026, 12, 29, 12, 0, 0, 0, time.UTC).Sub(e.c.Now()))
	if n := e.sweep(); n.Pruned != 2 || n.Missed != 1 || n.Scheduled != 1 || n.Started != 0 {
		t.Fatalf("the sweep that prunes %+v", n)
	}
	if insts, err := pim.ReviewInstances(ctx, e.st, once.ID); err != nil || len(insts) != 0 {
		t.Fatalf("instances of the one-time review %+v %v", insts, err)
	}
	for range 2 {
		if n := e.sweep(); n != (pim.ReviewSweep{}) {
			t.Fatalf("the one-time review, pruned in its window, ran again: %+v", n)
		}
	}
	for _, c := range []struct {
		id, status string
		instances  []string
	}{
		{once.ID, pim.ReviewCompleted, nil},
		{weekly.ID, pim.ReviewInProgress, []string{weekly.ID + ".00001", weekly.ID + ".00005"}},
	} {
		d, err := pim.GetReview(ctx, e.st, c.id, e.c.Now())
		if err != nil || d.Status != c.status || d.Pruned == nil || d.Pruned.Instances != 1 || d.Pruned.LastOccurrence != 0 {
			t.Errorf("%s: %s %+v %v; want %s", d.DisplayName, d.Status, d.Pruned, err, c.status)
		}
		insts, err := pim.ReviewInstances(ctx, e.st, c.id)
		var ids []string
		for _, inst := range insts {
			ids = append(ids, inst.ID)
		}
		if err != nil || fmt.Sprint(ids) != fmt.Sprint(c.instances) {
			t.Errorf("%s: instances %v %v; want %v", d.DisplayName, ids, err, c.instances)
		}
	}
	list, err := pim.ListReviews(ctx, e.st, e.c.Now())
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, d := range list {
		if want := map[string]string{once.ID: pim.ReviewCompleted, weekly.ID: pim.ReviewInProgress}[d.ID]; d.Status != want {
			t.Errorf("listed %s: %s; want %s", d.DisplayName, d.Status, want)
		}
	}
	// Every instance of the weekly review pruned in turn, its next
	// occurrence still follows the last.
	e.c.Add(time.Date(2027, 1, 1, 12, 0, 0, 0, time.UTC).Sub(e.c.Now()))
	e.sweep() // starts the sixth
	e.c.Add(12 * time.Hour)
	e.sweep() // completes and applies it, schedules the seventh
	e.c.Add(40 * 24 * time.Hour)
	if n := e.sweep(); n.Pruned != 2 {
		t.Fatalf("the second pruning %+v", n)
	}
	d, err := pim.GetReview(ctx, e.st, weekly.ID, e.c.Now())
	if err != nil || d.Status != pim.ReviewInProgress || d.Pruned.Instances != 3 || d.Pruned.LastOccurrence != 5 {
		t.Fatalf("weekly %s %+v %v", d.Status, d.Pruned, err)
	}
	if last := e.instance(weekly.ID); last.Occurrence <= 5 {
		t.Fatalf("the next instance %+v", last)
	}
}

// TestReviewRetentionResumes: a sweep cut short half-way through an
// instance's items leaves the rest to the next, which finishes with the
// one record.
func TestReviewRetentionResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	e := newReviewEnv(t, st)
	e.rv.Retention = 24 * time.Hour
	e.people()
	const held = 1500
	objs := make([]store.Object, 0, held)
	for i := range held {
		objs = append(objs, e.assignment(uid(10000+i), who.alice, "Reader", fmt.Sprintf("%s/r%04d", payrollScope, i), schedule.Schedule{}))
	}
	e.put(objs...)
	d := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.InstanceDurationInDays, d.Settings.AutoApplyDecisionsEnabled = 1, true
	}))
	e.sweep()
	inst := e.instance(d.ID)
	e.c.Add(24 * time.Hour)
	e.sweep()
	e.c.Add(24 * time.Hour)

	// The first batch commits; then the node stops.
	failing := &failAfter{Store: st, left: 1}
	svc := pim.New(failing)
	svc.Now = e.c.Now
	rv := pim.NewReviews(svc, ownerGuard)
	rv.Retention = e.rv.Retention
	if n, err := rv.Sweep(ctx); err == nil || n.Pruned != 0 {
		t.Fatalf("the cut sweep %+v %v", n, err)
	}
	if got := len(e.items(inst.ID)); got != held-1000 || len(e.pruneRecords()) != 0 {
		t.Fatalf("after the cut sweep: %d items, records %v", got, e.pruneRecords())
	}
	if got := e.instance(d.ID); got.ID != inst.ID || got.Status != pim.ReviewApplied {
		t.Fatalf("the instance half-pruned %+v", got)
	}
	if n := e.sweep(); n.Pruned != 1 {
		t.Fatalf("the next sweep %+v", n)
	}
	if len(e.items(inst.ID)) != 0 || e.exists(pim.ReviewInstanceKind, inst.ID) || len(e.pruneRecords()) != 1 {
		t.Fatalf("after the next sweep: records %v", e.pruneRecords())
	}
}

// failAfter is a real store whose Updates fail once left have gone
// through, as a node that stops would.
type failAfter struct {
	store.Store
	mu   sync.Mutex
	left int
}

func (f *failAfter) Update(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) (int64, error) {
	f.mu.Lock()
	ok := f.left > 0
	f.left--
	f.mu.Unlock()
	if !ok {
		return 0, errors.New("the node stopped")
	}
	return f.Store.Update(ctx, fn)
}
