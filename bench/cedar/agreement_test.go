package cedarbench

import (
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/rbac"
)

var scale = flag.Float64("scale", 1, "tenant size relative to DefaultConfig (principals, subscriptions, assignments)")

func config() Config {
	c := DefaultConfig()
	f := *scale
	c.Users = int(float64(c.Users) * f)
	c.Groups = int(float64(c.Groups) * f)
	c.Subscriptions = max(6, int(float64(c.Subscriptions)*f))
	c.Assignments = int(float64(c.Assignments) * f)
	return c
}

// The dataset and the engines are built once per test binary.
var (
	fixtureOnce sync.Once
	fixture     struct {
		ds        *Dataset
		cedar     *Cedar
		verity    *Verity
		cedarLoad time.Duration
		verLoad   time.Duration
		genTime   time.Duration
		err       error
	}
)

func setup(tb testing.TB) (*Dataset, *Cedar, *Verity) {
	tb.Helper()
	fixtureOnce.Do(func() {
		f := &fixture
		t0 := time.Now()
		if f.ds, f.err = Generate(config()); f.err != nil {
			return
		}
		f.genTime = time.Since(t0)
		t0 = time.Now()
		if f.verity, f.err = NewVerity(f.ds); f.err != nil {
			return
		}
		f.verLoad = time.Since(t0)
		t0 = time.Now()
		f.cedar, f.err = NewCedar(f.ds)
		f.cedarLoad = time.Since(t0)
	})
	if fixture.err != nil {
		tb.Fatal(fixture.err)
	}
	return fixture.ds, fixture.cedar, fixture.verity
}

// TestAgreement decides every sampled request with Verity's engine, with
// Cedar (sliced policy set) and with the reference checker, and fails with
// the first differences unless all three give the same allow/deny answer.
// A few requests also go through Cedar with the whole, unsliced policy
// set, to show the slicing changes nothing.
func TestAgreement(t *testing.T) {
	ds, c, v := setup(t)
	ref := NewReference(ds)
	var s Slice
	var res rbac.Decision
	reasons := map[string]int{}
	allowed := 0
	var bad []string
	for i := range ds.Requests {
		v.Check(i, &res)
		got, err := c.Allowed(i, &s)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want := ref.Allowed(i)
		if res.Allowed != got || got != want {
			bad = append(bad, fmt.Sprintf("request %d: %s\n  verity %v (%v), cedar %v, reference %v\n%s",
				i, ds.Describe(i), res.Allowed, res.Reason, got, want, c.Explain(i)))
			continue
		}
		reasons[res.Reason.String()]++
		if got {
			allowed++
		}
	}
	if len(bad) > 0 {
		for _, b := range bad[:min(len(bad), 3)] {
			t.Error(b)
		}
		t.Fatalf("%d of %d requests disagree", len(bad), len(ds.Requests))
	}
	t.Logf("Verity, Cedar and the reference agree on all %d requests: %d allowed, %d denied; Verity's reasons %v",
		len(ds.Requests), allowed, len(ds.Requests)-allowed, reasons)
	t.Logf("%d assignments Verity skipped", v.Skipped)

	n := 3
	if len(ds.Assignments) <= 100_000 {
		n = 50
	}
	t0 := time.Now()
	for i := range n {
		got, err := c.AllowedUnsliced(i)
		if err != nil {
			t.Fatal(err)
		}
		if got != ref.Allowed(i) {
			t.Fatalf("request %d: unsliced Cedar says %v, reference %v", i, got, !got)
		}
	}
	unsliced = time.Since(t0) / time.Duration(n)
	t.Logf("unsliced Cedar (all %d policies per request) agrees on the first %d requests; %v per request",
		len(ds.Assignments)+len(ds.Denies), n, unsliced)
}

var unsliced time.Duration
