package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verityhq/verity/internal/proxy"
	"github.com/verityhq/verity/internal/store"
)

// stallAudit holds the store's writer (an open write transaction) and
// queues audit events until the backlog is full, so that the audit log
// cannot take another decision; release lets it drain.
func stallAudit(t *testing.T, st store.Store) (release func()) {
	t.Helper()
	hold, held := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = st.Update(context.Background(), func(context.Context, store.Tx) error {
			close(held)
			<-hold
			return errors.New("rolled back")
		})
	}()
	<-held
	// Fill the backlog, twice: the group commit in flight takes a batch
	// out of it before it blocks on the writer.
	for range 2 {
		for i := 0; ; i++ {
			err := st.AppendAuditAsync(context.Background(), store.AuditEvent{Action: "test.fill", Result: "success"})
			if errors.Is(err, store.ErrAuditBacklog) {
				break
			}
			if err != nil || i > 2*store.MaxAuditBacklog {
				t.Fatalf("filling the audit backlog: %d %v", i, err)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return func() { close(hold); <-done }
}

// TestAuditBacklogFailsClosed: when the audit log cannot take a decision,
// the request is refused (503) and the metric says so; with
// AuditFailOpen it is served.
func TestAuditBacklogFailsClosed(t *testing.T) {
	t.Parallel()
	for _, failOpen := range []bool{false, true} {
		e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.AuditFailOpen = failOpen }}, nil)
		c := e.browser()
		if resp, _ := e.signIn(c, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		release := stallAudit(t, e.st)
		if err := e.st.AppendAuditAsync(context.Background(), store.AuditEvent{Action: "test.fill"}); !errors.Is(err, store.ErrAuditBacklog) {
			t.Fatalf("failOpen=%v: the backlog is not full: %v", failOpen, err)
		}
		resp, body := e.get(noRedirects(c), e.base+"/payroll/", "Accept", "application/json")
		release()
		want := http.StatusServiceUnavailable
		if failOpen {
			want = http.StatusOK
		}
		if resp.StatusCode != want || (!failOpen && !strings.Contains(body, "AuditUnavailable")) {
			t.Fatalf("failOpen=%v with the audit log full: %d %s", failOpen, resp.StatusCode, body)
		}
		if !strings.Contains(e.logs.String(), "audit") {
			t.Errorf("failOpen=%v: nothing in the log", failOpen)
		}
		if n := counterValue(t, e.px, "verity_proxy_audit_failures_total"); n < 1 {
			t.Errorf("failOpen=%v: verity_proxy_audit_failures_total = %v", failOpen, n)
		}
	}
}

// counterValue sums a counter of the proxy's metrics.
func counterValue(t *testing.T, px *proxy.Proxy, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(px.Metrics())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
