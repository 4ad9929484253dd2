package cedarbench

import (
	"testing"
	"time"
)

func TestGenerateSmall(t *testing.T) {
	t0 := time.Now()
	ds, err := Generate(Config{Users: 9000, Groups: 1000, Subscriptions: 10, Assignments: 100_000, Requests: 2000})
	if err != nil {
		t.Fatal(err)
	}
	ref := NewReference(ds)
	allow := 0
	for i := range ds.Requests {
		if ref.Allowed(i) {
			allow++
		}
	}
	t.Logf("%v: %d principals %d scopes %d roles %d assignments %d actions %d data actions; %d/%d allowed",
		time.Since(t0), len(ds.Principals), len(ds.Scopes), len(ds.Roles), len(ds.Assignments), len(ds.Actions), len(ds.DataActions), allow, len(ds.Requests))
}

func TestCedarSmall(t *testing.T) {
	ds, err := Generate(Config{Users: 9000, Groups: 1000, Subscriptions: 10, Assignments: 100_000, Requests: 2000})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c, err := NewCedar(ds)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cedar load %v (expand %v, entities %v, policies %v), %d action edges", time.Since(t0), c.ExpandTime, c.EntityTime, c.PolicyTime, c.ActionParents)
	ref := NewReference(ds)
	var s Slice
	bad := 0
	for i := range ds.Requests {
		got, err := c.Allowed(i, &s)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref.Allowed(i); got != want {
			bad++
			if bad < 4 {
				t.Errorf("request %d %+v: cedar %v reference %v", i, ds.Requests[i], got, want)
			}
		}
	}
	for i := range 20 {
		got, _ := c.AllowedUnsliced(i)
		if want := ref.Allowed(i); got != want {
			t.Errorf("unsliced request %d: cedar %v reference %v", i, got, want)
		}
	}
	t.Logf("%d disagree", bad)
}
