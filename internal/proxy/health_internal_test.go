package proxy

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
)

func testUpstreams(now *time.Time) *upstreams {
	return newUpstreams(newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return *now })
}

// TestBackoff: a connection failure leaves an upstream out for 5 s; a
// failed trial after that doubles the back-off up to 60 s; failures of
// requests already under way change nothing; an answer ends it.
func TestBackoff(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	u := testUpstreams(&now)
	set := u.setFor("r", u.pool("r"), []string{"http://10.0.0.1/", "http://10.0.0.2/"})
	up := set.ups[0]
	out := func() time.Duration { return time.Duration(up.downUntil.Load() - now.UnixNano()) }
	u.failed("r", up, "connect", errors.New("refused"))
	if out() != 5*time.Second || up.up(now.UnixNano()) {
		t.Fatalf("after a failure: out for %v", out())
	}
	now = now.Add(time.Second)
	u.failed("r", up, "connect", errors.New("refused")) // sent before it went down
	if out() != 4*time.Second {
		t.Fatalf("a failure within the back-off changed it: out for %v", out())
	}
	for _, want := range []time.Duration{10, 20, 40, 60, 60} {
		now = now.Add(out())
		if !up.up(now.UnixNano()) {
			t.Fatal("still out after its back-off")
		}
		u.failed("r", up, "connect", errors.New("refused"))
		if out() != want*time.Second {
			t.Fatalf("after a failed trial: out for %v, want %v", out(), want*time.Second)
		}
	}
	u.reached("r", up)
	if !up.up(now.UnixNano()) {
		t.Fatal("an answer did not end the back-off")
	}
	u.failed("r", up, "connect", errors.New("refused"))
	if out() != 5*time.Second {
		t.Fatalf("after an answer and a new failure: out for %v, want 5s", out())
	}
}

// TestThresholds: a health check takes an upstream out after
// unhealthyThreshold failures in a row, and back after healthyThreshold
// passes in a row.
func TestThresholds(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	u := testUpstreams(&now)
	set := u.setFor("r", u.pool("r"), []string{"http://10.0.0.1/"})
	up := set.ups[0]
	cfg := probeConfig{routeID: "r", set: set, check: directory.RouteHealthCheck{Path: "/healthz", HealthyThreshold: 2, UnhealthyThreshold: 3}}
	steps := []struct {
		status int
		up     bool
	}{
		{503, true}, {503, true}, {200, true}, // a pass starts the count again
		{503, true}, {0, true}, {500, false}, // three in a row (0: no answer)
		{200, false}, {503, false}, {204, false}, {302, true},
	}
	for i, s := range steps {
		var err error
		if s.status == 0 {
			err = errors.New("refused")
		}
		u.probed(cfg, up, s.status, err)
		if got := up.up(now.UnixNano()); got != s.up {
			t.Fatalf("step %d (%d): up %v, want %v", i, s.status, got, s.up)
		}
	}
}

// TestPick: round robin over the upstreams that take requests; with none,
// the one that failed least recently; an upstream listed twice takes two
// shares.
func TestPick(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	u := testUpstreams(&now)
	set := u.setFor("r", u.pool("r"), []string{"http://a/", "http://b/", "http://c/", "http://a/"})
	if len(set.uniq) != 3 || set.ups[0] != set.ups[3] {
		t.Fatalf("a listed twice: %d upstreams, shared %v", len(set.uniq), set.ups[0] == set.ups[3])
	}
	count := func(not *upstream) map[string]int {
		got := map[string]int{}
		for n := range uint64(12) {
			got[set.pick(n, now.UnixNano(), not).raw]++
		}
		return got
	}
	if got := count(nil); got["http://a/"] != 6 || got["http://b/"] != 3 || got["http://c/"] != 3 {
		t.Errorf("all up: %v", got)
	}
	b, c := set.ups[1], set.ups[2]
	u.failed("r", c, "connect", errors.New("refused"))
	if got := count(nil); got["http://a/"] != 8 || got["http://b/"] != 4 {
		t.Errorf("c down: %v", got)
	}
	if got := count(set.ups[0]); got["http://b/"] != 12 {
		t.Errorf("c down, a left out (a retry): %v", got)
	}
	now = now.Add(time.Second)
	u.failed("r", b, "connect", errors.New("refused"))
	now = now.Add(time.Second)
	u.failed("r", set.ups[0], "connect", errors.New("refused"))
	if got := count(nil); got["http://c/"] != 12 {
		t.Errorf("all down: %v, want c, the least recently failed", got)
	}
	// A set changed at runtime keeps the health of upstreams it still lists.
	set2 := u.setFor("r", u.pool("r"), []string{"http://c/", "http://d/"})
	if set2.ups[0] != c || set2.ups[0].up(now.UnixNano()) || !set2.ups[1].up(now.UnixNano()) {
		t.Error("c lost its health, or d is not up")
	}
}
