package proxy_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/jit"
	"github.com/verityhq/verity/internal/proxy"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// from is a browser whose connections leave from a given loopback
// address, so the proxy sees a different client.
func (e *env) from(local string) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := e.browserWith(jar)
	tr := c.Transport.(*http.Transport)
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, _ := net.SplitHostPort(addr); host == appHost {
			addr = e.proxy.Listener.Addr().String()
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		return d.DialContext(ctx, network, addr)
	}
	return c
}

// TestJITThroughTheProxy: a just-in-time policy closes the application's
// port; closed, the proxy refuses every request before sign-in is even
// asked for. Alice opens it to her address for an hour: from there she
// signs in and goes through, from a neighbouring address nothing does,
// and at the end of the hour her signed-in session is refused at the next
// request, with no rebuild or sweep in between. Every step is audited.
func TestJITThroughTheProxy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &pimClock{t: time.Now().UTC()}
	e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.Now = clock.Now }}, nil)
	_, portText, _ := net.SplitHostPort(e.proxy.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)

	svc := jit.New(e.st)
	svc.Now = clock.Now
	admin := jit.Caller{ID: "admin", May: func(string, string) bool { return true }}
	resource := "/apps/" + appID
	policy := jit.Policy{Name: "payroll", Properties: jit.Properties{VirtualMachines: []jit.Resource{{ID: resource, Ports: []jit.Port{{
		Number: port, Protocol: "TCP", AllowedSourceAddressPrefix: "127.0.0.0/8", MaxRequestAccessDuration: schedule.Duration(3 * time.Hour)}}}}}}
	_, _, rev, err := svc.PutPolicy(ctx, admin, policy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.live.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
	alice := e.from("127.0.0.1")
	neighbour := e.from("127.0.0.2")
	refused := func(c *http.Client, what string) {
		t.Helper()
		resp, body := e.get(noRedirects(c), e.base+"/payroll/x", "Accept", "application/json")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "900420") {
			t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
		}
	}
	refused(alice, "closed: no request yet, not even a sign-in page")

	asAlice := jit.Caller{ID: aliceID, Name: "alice@example.com", Address: netip.MustParseAddr("127.0.0.1"),
		May: func(action, scope string) bool { return action == jit.ActionInitiate && scope == resource }}
	q, rev, err := svc.Initiate(ctx, asAlice, "payroll", jit.InitiateRequest{Justification: "month-end close",
		VirtualMachines: []jit.InitiateResource{{ID: resource, Ports: []jit.InitiatePort{{Number: port, EndTimeUtc: clock.Now().Add(time.Hour)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.live.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.signIn(alice, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("open to alice's address: sign-in and through: %d %s", resp.StatusCode, body)
	}
	refused(neighbour, "open to 127.0.0.1 only: 127.0.0.2")

	clock.Add(59 * time.Minute)
	if resp, body := e.get(noRedirects(alice), e.base+"/payroll/x", "Accept", "application/json"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a minute before the end: %d %s", resp.StatusCode, body)
	}
	clock.Add(time.Minute)
	refused(alice, "at the end, with a signed-in session")

	if n, _, err := svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	evs, err := e.st.ListAudit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, ev := range evs {
		seen[ev.Action]++
	}
	// Three refusals of a closed port, queued for the audit log.
	for _, d := range e.decisions(5) {
		if code, _ := d["code"].(float64); code == 900420 {
			seen["closed from "+d["ipAddress"].(string)]++
		}
	}
	for _, a := range []string{"jit.policy.write", "jit.initiate", "jit.expire", "closed from 127.0.0.1", "closed from 127.0.0.2"} {
		if seen[a] == 0 {
			t.Errorf("no %s in the audit log (%v)", a, seen)
		}
	}
	if got, _ := jit.GetRequest(ctx, e.st, q.ID, clock.Now()); got.VirtualMachines[0].Ports[0].StatusReason != jit.ReasonExpired {
		t.Errorf("the request after the sweep: %+v", got)
	}
}

// TestJITClosesUpgradedConnections: an upgraded connection opened while
// the port is open to the client is closed when the request's window
// ends, with the session still live, and the closing is audited.
func TestJITClosesUpgradedConnections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &pimClock{t: time.Now().UTC()}
	echo := echoUpstream(t)
	e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.Now = clock.Now }}, func(r *directory.AppRoute) { r.To = []string{echo.URL} })
	_, portText, _ := net.SplitHostPort(e.proxy.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)
	svc := jit.New(e.st)
	svc.Now = clock.Now
	resource := "/apps/" + appID
	all := func(string, string) bool { return true }
	if _, _, _, err := svc.PutPolicy(ctx, jit.Caller{ID: "admin", May: all}, jit.Policy{Name: "payroll", Properties: jit.Properties{
		VirtualMachines: []jit.Resource{{ID: resource, Ports: []jit.Port{{Number: port, Protocol: "*", AllowedSourceAddressPrefix: "*",
			MaxRequestAccessDuration: schedule.Duration(time.Hour)}}}}}}); err != nil {
		t.Fatal(err)
	}
	_, rev, err := svc.Initiate(ctx, jit.Caller{ID: aliceID, Address: netip.MustParseAddr("127.0.0.1"), May: all}, "payroll", jit.InitiateRequest{
		VirtualMachines: []jit.InitiateResource{{ID: resource, Ports: []jit.InitiatePort{{Number: port, EndTimeUtc: clock.Now().Add(time.Hour)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.live.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
	c := e.browser()
	if resp, body := e.signIn(c, e.base+"/payroll/"); resp.Request.URL.String() != e.base+"/payroll/" {
		t.Fatalf("sign-in ended at %s: %d %s", resp.Request.URL, resp.StatusCode, body)
	}
	conn, br := e.upgrade(c)
	clock.Add(time.Hour)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if line, err := br.ReadString('\n'); err == nil {
		t.Fatalf("the connection carried %q after the window ended", line)
	} else if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the connection stayed open after the window ended")
	}
	// The closing is audited (decisionMatching fails the test otherwise).
	e.decisionMatching(func(ev map[string]any) bool {
		reason, _ := ev["reason"].(string)
		return ev["code"] == float64(900410) && strings.Contains(reason, "just-in-time")
	})
}
