package jit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/jit"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
	"github.com/verityhq/verity/internal/strictjson"
)

func TestMain(m *testing.M) { storetest.Main(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func setup(t *testing.T, at time.Time) (*jit.Service, store.Store, *clock) {
	t.Helper()
	st := storetest.OpenSQLite(t)
	c := &clock{t: at}
	s := jit.New(st)
	s.Now = c.Now
	return s, st, c
}

// caller may do the actions listed (action@scope), or everything when
// none are.
func caller(id, addr string, grants ...string) jit.Caller {
	return jit.Caller{ID: id, Name: id + "@contoso.com", Address: netip.MustParseAddr(addr), May: func(action, scope string) bool {
		if len(grants) == 0 {
			return true
		}
		for _, g := range grants {
			if g == action+"@"+scope {
				return true
			}
		}
		return false
	}}
}

func gate(t *testing.T, st store.Store, now time.Time) *jit.Gate {
	t.Helper()
	g, err := jit.Load(context.Background(), st, now)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// example reads the body of one of Defender's published examples.
func example(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Parameters struct {
			Body json.RawMessage `json:"body"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	if err := strictjson.Unmarshal(ex.Parameters.Body, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

const vm1 = "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg1/providers/Microsoft.Compute/virtualMachines/vm1"

// Defender's own examples: the policy protecting 22 and 3389 of vm1, and
// the call opening 3389 to 192.127.0.2 for an hour.
func TestDefenderExamples(t *testing.T) {
	ctx := context.Background()
	s, st, clk := setup(t, time.Date(2018, 7, 12, 8, 53, 3, 365879800, time.UTC))
	var p jit.Policy
	example(t, "CreateJitNetworkAccessPolicy_example.json", &p)
	p.Name = "default"
	out, created, _, err := s.PutPolicy(ctx, caller("admin", "10.0.0.1"), p)
	if err != nil || !created {
		t.Fatalf("put: %v created=%v", err, created)
	}
	if len(out.Properties.Requests) != 0 || out.ID != jit.PolicyID("default") || out.Type != jit.ResourceType {
		t.Errorf("the example's requests are the service's to keep, and the output names the policy: %+v", out)
	}
	var in jit.InitiateRequest
	example(t, "InitiateJitNetworkAccessPolicy_example.json", &in)
	barbara := caller("barbara", "198.51.100.9")
	q, _, err := s.Initiate(ctx, barbara, "default", in)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Date(2018, 7, 12, 9, 53, 3, 365879800, time.UTC)
	port := q.VirtualMachines[0].Ports[0]
	if port.Number != 3389 || port.AllowedSourceAddressPrefix != "192.127.0.2" || !port.EndTimeUtc.Equal(end) ||
		port.Status != jit.StatusInitiated || port.StatusReason != jit.ReasonUserRequested || q.Justification != "testing a new version of the product" ||
		q.Requestor != "barbara@contoso.com" {
		t.Fatalf("request: %+v", q)
	}

	g := gate(t, st, clk.Now())
	from := netip.MustParseAddr("192.127.0.2")
	other := netip.MustParseAddr("192.127.0.3")
	for _, tt := range []struct {
		name     string
		port     int
		proto    string
		addr     netip.Addr
		at       time.Time
		guarded  bool
		open     bool
		untilEnd bool
	}{
		{"the asked port from the asked address", 3389, jit.ProtocolTCP, from, clk.Now(), true, true, true},
		{"UDP too (protocol *)", 3389, jit.ProtocolUDP, from, clk.Now(), true, true, true},
		{"a second before the end", 3389, jit.ProtocolTCP, from, end.Add(-time.Second), true, true, true},
		{"at the end", 3389, jit.ProtocolTCP, from, end, true, false, false},
		{"another address", 3389, jit.ProtocolTCP, other, clk.Now(), true, false, false},
		{"the other guarded port", 22, jit.ProtocolTCP, from, clk.Now(), true, false, false},
		{"a port no policy guards", 443, jit.ProtocolTCP, other, clk.Now(), false, true, false},
	} {
		res := g.Resource(vm1, tt.port, tt.proto, tt.addr, tt.at)
		if res.Guarded != tt.guarded || res.Open != tt.open || (tt.untilEnd && (!res.Until.Equal(end) || res.RequestID != q.ID)) {
			t.Errorf("%s: %+v", tt.name, res)
		}
		if res.Guarded && res.Policy != "default" {
			t.Errorf("%s: policy %q", tt.name, res.Policy)
		}
	}
	// The resource id compares as scopes do, ignoring case.
	if res := g.Resource(strings.ToUpper(vm1), 3389, jit.ProtocolTCP, from, clk.Now()); !res.Open {
		t.Errorf("upper-case id: %+v", res)
	}

	got, err := jit.GetPolicy(ctx, st, "DEFAULT", end.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Properties.Requests) != 1 || got.Properties.Requests[0].VirtualMachines[0].Ports[0].StatusReason != jit.ReasonExpired {
		t.Errorf("after its end the request reads Revoked/Expired: %+v", got.Properties.Requests)
	}
}

const app = "/apps/6f1c2a84-2b1e-4a8e-9d53-0f2d7a1c9e10"

func appPolicy(sources ...string) jit.Policy {
	port := jit.Port{Number: 443, Protocol: "tcp", MaxRequestAccessDuration: schedule.Duration(3 * time.Hour)}
	if len(sources) == 1 {
		port.AllowedSourceAddressPrefix = sources[0]
	} else {
		port.AllowedSourceAddressPrefixes = sources
	}
	return jit.Policy{Name: "ops", Properties: jit.Properties{VirtualMachines: []jit.Resource{{ID: app, Ports: []jit.Port{port}}}}}
}

func initiate(end time.Time, source string) jit.InitiateRequest {
	return jit.InitiateRequest{VirtualMachines: []jit.InitiateResource{{ID: app, Ports: []jit.InitiatePort{{Number: 443, EndTimeUtc: end, AllowedSourceAddressPrefix: source}}}},
		Justification: "incident 4711"}
}

func fieldOf(err error) string {
	var je *jit.Error
	if errors.As(err, &je) {
		return je.Field
	}
	var fe *strictjson.FieldError
	if errors.As(err, &fe) {
		return fe.Path
	}
	return "?"
}

func TestInitiateRules(t *testing.T) {
	ctx := context.Background()
	s, st, clk := setup(t, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	if _, _, _, err := s.PutPolicy(ctx, caller("admin", "10.0.0.1"), appPolicy("203.0.113.0/24", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	alice := caller("alice", "203.0.113.7", jit.ActionInitiate+"@"+app)
	for _, tt := range []struct {
		name  string
		who   jit.Caller
		in    jit.InitiateRequest
		field string
		code  string
	}{
		{"outside the allowed sources", alice, initiate(now.Add(time.Hour), "198.51.100.1"), "virtualMachines[0].ports[0].allowedSourceAddressPrefix", ""},
		{"a range wider than allowed", alice, initiate(now.Add(time.Hour), "203.0.112.0/23"), "virtualMachines[0].ports[0].allowedSourceAddressPrefix", ""},
		{"any source when sources are listed", alice, initiate(now.Add(time.Hour), "*"), "virtualMachines[0].ports[0].allowedSourceAddressPrefix", ""},
		{"not an address", alice, initiate(now.Add(time.Hour), "203.0.113.300"), "virtualMachines[0].ports[0].allowedSourceAddressPrefix", ""},
		{"longer than the maximum", alice, initiate(now.Add(4*time.Hour), ""), "virtualMachines[0].ports[0].endTimeUtc", ""},
		{"an end that has passed", alice, initiate(now.Add(-time.Minute), ""), "virtualMachines[0].ports[0].endTimeUtc", ""},
		{"no end", alice, initiate(time.Time{}, ""), "virtualMachines[0].ports[0].endTimeUtc", ""},
		{"a port not protected", alice, jit.InitiateRequest{VirtualMachines: []jit.InitiateResource{{ID: app, Ports: []jit.InitiatePort{{Number: 22, EndTimeUtc: now.Add(time.Hour)}}}}},
			"virtualMachines[0].ports[0].number", ""},
		{"a resource not protected", alice, jit.InitiateRequest{VirtualMachines: []jit.InitiateResource{{ID: "/apps/other", Ports: []jit.InitiatePort{{Number: 443, EndTimeUtc: now.Add(time.Hour)}}}}},
			"virtualMachines[0].id", ""},
		{"the same port twice", alice, jit.InitiateRequest{VirtualMachines: []jit.InitiateResource{{ID: app, Ports: []jit.InitiatePort{{Number: 443, EndTimeUtc: now.Add(time.Hour)}, {Number: 443, EndTimeUtc: now.Add(time.Hour)}}}}},
			"virtualMachines[0].ports[1].number", ""},
		{"nothing asked", alice, jit.InitiateRequest{}, "virtualMachines", ""},
		{"no right to initiate", caller("mallory", "203.0.113.8", jit.ActionRead+"@"+app), initiate(now.Add(time.Hour), ""), "", jit.ErrForbidden.Code},
		{"no such policy", alice, initiate(now.Add(time.Hour), ""), "", jit.ErrNotFound.Code},
	} {
		name := "ops"
		if tt.name == "no such policy" {
			name = "nope"
		}
		_, _, err := s.Initiate(ctx, tt.who, name, tt.in)
		var je *jit.Error
		switch {
		case err == nil:
			t.Errorf("%s: accepted", tt.name)
		case tt.code != "" && (!errors.As(err, &je) || je.Code != tt.code):
			t.Errorf("%s: %v, want code %s", tt.name, err, tt.code)
		case tt.field != "" && fieldOf(err) != tt.field:
			t.Errorf("%s: %v at %q, want %q", tt.name, err, fieldOf(err), tt.field)
		}
	}
	if g := gate(t, st, now); g.Resource(app, 443, jit.ProtocolTCP, alice.Address, now).Open {
		t.Fatal("a refused request opened the port")
	}

	// No source named: the caller's own address; an end a few seconds past
	// the maximum (the caller's clock) is brought back to it.
	q, _, err := s.Initiate(ctx, alice, "ops", initiate(now.Add(3*time.Hour+10*time.Second), ""))
	if err != nil {
		t.Fatal(err)
	}
	if p := q.VirtualMachines[0].Ports[0]; p.AllowedSourceAddressPrefix != "203.0.113.7" || !p.EndTimeUtc.Equal(now.Add(3*time.Hour)) {
		t.Errorf("defaults: %+v", p)
	}
	g := gate(t, st, now)
	if res := g.App("6f1c2a84-2b1e-4a8e-9d53-0f2d7a1c9e10", 443, alice.Address, now); !res.Open || res.RequestID != q.ID || res.Requestor != "alice@contoso.com" {
		t.Errorf("the application's port for alice: %+v", res)
	}
	if res := g.App("6f1c2a84-2b1e-4a8e-9d53-0f2d7a1c9e10", 443, netip.MustParseAddr("203.0.113.8"), now); res.Open || !res.Guarded {
		t.Errorf("a neighbour inside the allowed range but not asked for: %+v", res)
	}
	if res := g.App("6f1c2a84-2b1e-4a8e-9d53-0f2d7a1c9e10", 8443, alice.Address, now); !res.Open || res.Guarded {
		t.Errorf("another port of the application is not guarded: %+v", res)
	}

	// Bob's request for the same port stands beside alice's; alice's newer
	// one replaces her older one.
	bob := caller("bob", "2001:db8::5", jit.ActionInitiate+"@"+app)
	qb, _, err := s.Initiate(ctx, bob, "ops", initiate(now.Add(time.Hour), ""))
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	q2, _, err := s.Initiate(ctx, alice, "ops", initiate(clk.Now().Add(30*time.Minute), "203.0.113.9"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := jit.GetRequest(ctx, st, q.ID, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p := old.VirtualMachines[0].Ports[0]; p.Status != jit.StatusRevoked || p.StatusReason != jit.ReasonNewerRequestInitiated {
		t.Errorf("alice's older request: %+v", p)
	}
	g = gate(t, st, clk.Now())
	for addr, want := range map[string]string{"203.0.113.7": "", "203.0.113.9": q2.ID, "2001:db8::5": qb.ID} {
		res := g.App("6f1c2a84-2b1e-4a8e-9d53-0f2d7a1c9e10", 443, netip.MustParseAddr(addr), clk.Now())
		if res.Open != (want != "") || res.RequestID != want {
			t.Errorf("%s: %+v, want request %q", addr, res, want)
		}
	}
}

func TestPolicyValidation(t *testing.T) {
	ctx := context.Background()
	s, _, _ := setup(t, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	admin := caller("admin", "10.0.0.1")
	for _, tt := range []struct {
		name  string
		edit  func(p *jit.Policy)
		field string
	}{
		{"bad name", func(p *jit.Policy) { p.Name = "../x" }, "name"},
		{"long name", func(p *jit.Policy) { p.Name = strings.Repeat("a", 57) }, "name"},
		{"kind", func(p *jit.Policy) { p.Kind = "Advanced" }, "kind"},
		{"no resources", func(p *jit.Policy) { p.Properties.VirtualMachines = nil }, "properties.virtualMachines"},
		{"relative id", func(p *jit.Policy) { p.Properties.VirtualMachines[0].ID = "apps/x" }, "properties.virtualMachines[0].id"},
		{"unclean id", func(p *jit.Policy) { p.Properties.VirtualMachines[0].ID = "/apps/../x" }, "properties.virtualMachines[0].id"},
		{"the root", func(p *jit.Policy) { p.Properties.VirtualMachines[0].ID = "/" }, "properties.virtualMachines[0].id"},
		{"no ports", func(p *jit.Policy) { p.Properties.VirtualMachines[0].Ports = nil }, "properties.virtualMachines[0].ports"},
		{"port 0", func(p *jit.Policy) { p.Properties.VirtualMachines[0].Ports[0].Number = 0 }, "properties.virtualMachines[0].ports[0].number"},
		{"port 65536", func(p *jit.Policy) { p.Properties.VirtualMachines[0].Ports[0].Number = 65536 }, "properties.virtualMachines[0].ports[0].number"},
		{"ICMP", func(p *jit.Policy) { p.Properties.VirtualMachines[0].Ports[0].Protocol = "ICMP" }, "properties.virtualMachines[0].ports[0].protocol"},
		{"both source fields", func(p *jit.Policy) {
			p.Properties.VirtualMachines[0].Ports[0].AllowedSourceAddressPrefixes = []string{"10.0.0.0/8"}
		}, "properties.virtualMachines[0].ports[0]"},
		{"no source", func(p *jit.Policy) { p.Properties.VirtualMachines[0].Ports[0].AllowedSourceAddressPrefix = "" }, "properties.virtualMachines[0].ports[0]"},
		{"bad CIDR", func(p *jit.Policy) {
			p.Properties.VirtualMachines[0].Ports[0].AllowedSourceAddressPrefix = "10.0.0.0/33"
		},
			"properties.virtualMachines[0].ports[0].allowedSourceAddressPrefix"},
		{"a service tag", func(p *jit.Policy) { p.Properties.VirtualMachines[0].Ports[0].AllowedSourceAddressPrefix = "Internet" },
			"properties.virtualMachines[0].ports[0].allowedSourceAddressPrefix"},
		{"under 5 minutes", func(p *jit.Policy) {
			p.Properties.VirtualMachines[0].Ports[0].MaxRequestAccessDuration = schedule.Duration(4 * time.Minute)
		},
			"properties.virtualMachines[0].ports[0].maxRequestAccessDuration"},
		{"over a day", func(p *jit.Policy) {
			p.Properties.VirtualMachines[0].Ports[0].MaxRequestAccessDuration = schedule.Duration(25 * time.Hour)
		},
			"properties.virtualMachines[0].ports[0].maxRequestAccessDuration"},
		{"a port twice", func(p *jit.Policy) {
			vm := &p.Properties.VirtualMachines[0]
			vm.Ports = append(vm.Ports, vm.Ports[0])
		}, "properties.virtualMachines[0].ports[1].number"},
		{"a resource twice", func(p *jit.Policy) {
			p.Properties.VirtualMachines = append(p.Properties.VirtualMachines, p.Properties.VirtualMachines[0])
			p.Properties.VirtualMachines[1].ID = strings.ToUpper(app)
		}, "properties.virtualMachines[1].id"},
	} {
		p := appPolicy("*")
		tt.edit(&p)
		_, _, _, err := s.PutPolicy(ctx, admin, p)
		if err == nil || fieldOf(err) != tt.field {
			t.Errorf("%s: %v at %q, want %q", tt.name, err, fieldOf(err), tt.field)
		}
	}

	// Writing needs write at every resource, and a resource has one policy.
	writer := caller("writer", "10.0.0.2", jit.ActionWrite+"@"+app)
	if _, _, _, err := s.PutPolicy(ctx, writer, appPolicy("*")); err != nil {
		t.Fatal(err)
	}
	p := appPolicy("*")
	p.Properties.VirtualMachines = append(p.Properties.VirtualMachines, jit.Resource{ID: "/apps/other", Ports: p.Properties.VirtualMachines[0].Ports})
	if _, _, _, err := s.PutPolicy(ctx, writer, p); !errors.Is(err, jit.ErrForbidden) {
		t.Errorf("a resource the writer may not write: %v", err)
	}
	p.Name = "second"
	if _, _, _, err := s.PutPolicy(ctx, admin, p); err == nil || fieldOf(err) != "properties.virtualMachines[0].id" {
		t.Errorf("a resource another policy protects: %v", err)
	}
	// Replacing a policy takes protection off its old resources: that
	// needs write there too.
	p = appPolicy("*")
	p.Properties.VirtualMachines[0].ID = "/apps/other"
	if _, _, _, err := s.PutPolicy(ctx, caller("half", "10.0.0.3", jit.ActionWrite+"@/apps/other"), p); !errors.Is(err, jit.ErrForbidden) {
		t.Errorf("moving a policy off a resource without write there: %v", err)
	}
	if _, err := s.DeletePolicy(ctx, caller("reader", "10.0.0.4", jit.ActionRead+"@"+app), "ops"); !errors.Is(err, jit.ErrForbidden) {
		t.Errorf("delete without delete: %v", err)
	}
}

func TestRevokeSweepAndAudit(t *testing.T) {
	ctx := context.Background()
	s, st, clk := setup(t, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	admin := caller("admin", "10.0.0.1")
	if _, _, _, err := s.PutPolicy(ctx, admin, appPolicy("*")); err != nil {
		t.Fatal(err)
	}
	alice := caller("alice", "203.0.113.7", jit.ActionInitiate+"@"+app)
	q1, _, err := s.Initiate(ctx, alice, "ops", initiate(clk.Now().Add(time.Hour), ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Revoke(ctx, caller("mallory", "203.0.113.8", jit.ActionInitiate+"@"+app), q1.ID); !errors.Is(err, jit.ErrForbidden) {
		t.Errorf("someone else's request without write: %v", err)
	}
	r, _, err := s.Revoke(ctx, alice, q1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p := r.VirtualMachines[0].Ports[0]; p.Status != jit.StatusRevoked || p.StatusReason != jit.ReasonUserRequested || p.RevokedTimeUtc == nil {
		t.Errorf("revoked: %+v", p)
	}
	if g := gate(t, st, clk.Now()); g.Resource(app, 443, jit.ProtocolTCP, alice.Address, clk.Now()).Open {
		t.Error("a revoked request still opens the port")
	}
	if _, _, err := s.Revoke(ctx, alice, q1.ID); err == nil {
		t.Error("revoked twice")
	}

	bob := caller("bob", "203.0.113.9", jit.ActionInitiate+"@"+app)
	q2, _, err := s.Initiate(ctx, bob, "ops", initiate(clk.Now().Add(time.Hour), ""))
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot built before the end closes the port at the end on its
	// own; the sweep then records it.
	g := gate(t, st, clk.Now())
	clk.Add(time.Hour)
	if g.Resource(app, 443, jit.ProtocolTCP, bob.Address, clk.Now()).Open {
		t.Error("open at its end")
	}
	for i := range 2 {
		expired, pruned, err := s.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 - i; expired != want || pruned != 0 {
			t.Errorf("sweep %d: expired %d pruned %d, want %d and 0", i, expired, pruned, want)
		}
	}
	got, _ := jit.GetRequest(ctx, st, q2.ID, clk.Now())
	if p := got.VirtualMachines[0].Ports[0]; p.Status != jit.StatusRevoked || p.StatusReason != jit.ReasonExpired {
		t.Errorf("swept: %+v", p)
	}
	clk.Add(31 * 24 * time.Hour)
	if _, pruned, err := s.Sweep(ctx); err != nil || pruned != 2 {
		t.Errorf("prune after the retention: %d %v", pruned, err)
	}
	if list, _ := jit.Requests(ctx, st, nil); len(list) != 0 {
		t.Errorf("kept after the retention: %d", len(list))
	}

	evs, err := st.ListAudit(ctx, store.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs {
		count[e.Action+" by "+e.Actor]++
		if e.Action == "jit.initiate" && !strings.Contains(string(e.Details), "incident 4711") {
			t.Errorf("the initiate record lacks the justification: %s", e.Details)
		}
	}
	for k, n := range map[string]int{"jit.policy.write by admin": 1, "jit.initiate by alice": 1, "jit.initiate by bob": 1, "jit.revoke by alice": 1,
		"jit.expire by " + jit.AuditActor: 1, "jit.prune by " + jit.AuditActor: 2} {
		if count[k] != n {
			t.Errorf("%s: %d records, want %d (all: %v)", k, count[k], n, count)
		}
	}
}

// A store that holds an unreadable policy closes every guarded port
// rather than opening them.
func TestUnreadablePolicyFailsClosed(t *testing.T) {
	ctx := context.Background()
	_, st, clk := setup(t, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	_, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, store.Object{Kind: jit.PolicyKind, ID: "broken", Body: []byte(`{"name":"broken","properties":{"virtualMachines":"x"}}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	res := gate(t, st, clk.Now()).App("anything", 443, netip.MustParseAddr("10.0.0.1"), clk.Now())
	if res.Open || res.Err == nil {
		t.Errorf("%+v", res)
	}
}
