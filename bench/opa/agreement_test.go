package opabench

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// The dataset and both engines are built once per test binary.
var (
	fixtureOnce sync.Once
	fixture     struct {
		ds      *Dataset
		opa     *OPA
		opaScan *OPA
		verity  *Verity
		err     error
	}
)

func setup(tb testing.TB) (*Dataset, *OPA, *Verity) {
	tb.Helper()
	fixtureOnce.Do(func() {
		f := &fixture
		f.ds = Generate(DefaultConfig())
		if f.verity, f.err = NewVerity(f.ds); f.err != nil {
			return
		}
		f.opa, f.err = NewOPA(context.Background(), f.ds, Indexed)
	})
	if fixture.err != nil {
		tb.Fatal(fixture.err)
	}
	return fixture.ds, fixture.opa, fixture.verity
}

func scanOPA(tb testing.TB) *OPA {
	tb.Helper()
	ds, _, _ := setup(tb)
	if fixture.opaScan == nil {
		o, err := NewOPA(context.Background(), ds, Scan)
		if err != nil {
			tb.Fatal(err)
		}
		fixture.opaScan = o
	}
	return fixture.opaScan
}

// TestAgreement checks, for every sampled request, that OPA (policy.rego)
// and Verity reach the same outcome, the same applying enabled and
// report-only policies and the same unmet grant requirements. With
// -short it checks the first 1000 requests and skips the scan
// formulation; otherwise every request, and policy_scan.rego too.
func TestAgreement(t *testing.T) {
	ctx := context.Background()
	ds, opa, verity := setup(t)
	n := len(ds.Requests)
	engines := []struct {
		name string
		opa  *OPA
	}{{"policy.rego", opa}}
	if testing.Short() {
		n = min(n, 1000)
	} else {
		engines = append(engines, struct {
			name string
			opa  *OPA
		}{"policy_scan.rego", scanOPA(t)})
	}
	for _, e := range engines {
		outcomes := map[string]int{}
		var applying, reportOnly, unmet int
		var bad []string
		for i := range n {
			want := verity.Decide(i)
			got, err := e.opa.Decide(ctx, i)
			if err != nil {
				t.Fatalf("%s: request %d: %v", e.name, i, err)
			}
			if !got.Equal(want) {
				bad = append(bad, fmt.Sprintf("request %d: %v\n  verity: %v\n  opa:    %v", i, ds.Requests[i], want, got))
				continue
			}
			outcomes[want.Outcome]++
			applying += len(want.Enforced)
			reportOnly += len(want.ReportOnly)
			unmet += len(want.Unmet)
		}
		if len(bad) > 0 {
			for _, b := range bad[:min(len(bad), 5)] {
				t.Error(b)
			}
			t.Fatalf("%s: %d of %d requests disagree", e.name, len(bad), n)
		}
		t.Logf("%s agrees with Verity on all %d requests: outcomes %v; per request on average %.1f enabled and %.1f report-only policies apply, %.2f unmet requirements",
			e.name, n, outcomes, float64(applying)/float64(n), float64(reportOnly)/float64(n), float64(unmet)/float64(n))
	}
	// The scan formulation's store is a second copy of the directory in
	// AST form: drop it so that it does not weigh on the garbage
	// collection of the benchmarks that follow (BenchmarkOPAScan builds
	// it again).
	fixture.opaScan = nil
}
