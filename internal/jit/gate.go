package jit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Gate is the compiled policies and open requests of one snapshot: which
// ports are closed, and to whom they are open until when. It is read-only
// and answers from memory; time is the caller's, so a port closes at its
// end time without a rebuild.
type Gate struct {
	// err says why the policies could not be read (only a hand-edited
	// store gets here): every port then reads closed.
	err  error
	apps map[appPort]*guard // resources /apps/{appId}, by lower-case appId
	rest map[string]*guard  // other resources, by lower-case id + "|" + port
}

type appPort struct {
	app  string
	port int
}

// guard is one protected port: its policy and protocol, and the grants
// that open it.
type guard struct {
	policy   string
	protocol string
	grants   []grant
}

type grant struct {
	sources   []netip.Prefix
	end       int64 // Unix nanoseconds
	requestID string
	requestor string
}

// Result is the gate's answer for one connection.
type Result struct {
	// Guarded: a policy protects the port; Open: it is open to the
	// address now (always when not guarded).
	Guarded, Open bool
	// Policy is the guarding policy; RequestID, Requestor and Until the
	// request that opens the port, when one does.
	Policy, RequestID, Requestor string
	Until                        time.Time
	// Err: the policies could not be read, so the port reads closed.
	Err error
}

// Empty is a gate with no policies.
var Empty = &Gate{}

// Load reads every policy, and the requests open at now, and compiles
// them. Store errors are returned; an unreadable policy or request makes
// a gate that reads every port closed (fail closed) with the reason.
func Load(ctx context.Context, r store.Reader, now time.Time) (*Gate, error) {
	var policies []Policy
	var requests []Request
	var bad error
	err := store.Each(ctx, r, PolicyKind, func(o store.Object) error {
		var p Policy
		if err := json.Unmarshal(o.Body, &p); err != nil {
			bad = fmt.Errorf("jit policy %s: %w", o.ID, err)
			return nil
		}
		policies = append(policies, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = store.Each(ctx, r, RequestKind, func(o store.Object) error {
		var q Request
		if err := json.Unmarshal(o.Body, &q); err != nil {
			bad = fmt.Errorf("jit request %s: %w", o.ID, err)
			return nil
		}
		if q.Open(now) {
			requests = append(requests, q)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if bad != nil {
		return &Gate{err: bad}, nil
	}
	return Compile(policies, requests), nil
}

// Compile builds a gate from policies and requests. Requests for ports no
// policy guards open nothing.
func Compile(policies []Policy, requests []Request) *Gate {
	g := &Gate{apps: map[appPort]*guard{}, rest: map[string]*guard{}}
	for _, p := range policies {
		for _, r := range p.Properties.VirtualMachines {
			for _, pt := range r.Ports {
				g.put(r.ID, pt.Number, &guard{policy: p.Name, protocol: pt.Protocol})
			}
		}
	}
	for _, q := range requests {
		for _, vm := range q.VirtualMachines {
			for i := range vm.Ports {
				pt := &vm.Ports[i]
				gd := g.find(vm.ID, pt.Number)
				if gd == nil || !strings.EqualFold(gd.policy, q.Policy) || pt.Status != StatusInitiated {
					continue
				}
				gd.grants = append(gd.grants, grant{sources: pt.sources(), end: pt.EndTimeUtc.UnixNano(), requestID: q.ID, requestor: q.Requestor})
			}
		}
	}
	return g
}

func (g *Gate) put(resource string, port int, gd *guard) {
	if app, ok := appOf(resource); ok {
		g.apps[appPort{app, port}] = gd
		return
	}
	g.rest[restKey(resource, port)] = gd
}

func (g *Gate) find(resource string, port int) *guard {
	if app, ok := appOf(resource); ok {
		return g.apps[appPort{app, port}]
	}
	return g.rest[restKey(resource, port)]
}

func restKey(resource string, port int) string {
	return strings.ToLower(resource) + "|" + fmt.Sprint(port)
}

// appOf is the application id of a resource /apps/{appId}.
func appOf(resource string) (string, bool) {
	const prefix = "/apps/"
	if len(resource) <= len(prefix) || !strings.EqualFold(resource[:len(prefix)], prefix) || strings.Contains(resource[len(prefix):], "/") {
		return "", false
	}
	return strings.ToLower(resource[len(prefix):]), true
}

// App answers for a TCP connection from addr to port of the application
// appID (lower case, as the directory keeps it) at now.
func (g *Gate) App(appID string, port int, addr netip.Addr, now time.Time) Result {
	if g == nil {
		return Result{Open: true}
	}
	if g.err != nil {
		return Result{Guarded: true, Err: g.err}
	}
	if len(g.apps) == 0 {
		return Result{Open: true} // no application is guarded: no lookup
	}
	return g.apps[appPort{appID, port}].check(ProtocolTCP, addr, now)
}

// Resource answers for a connection by protocol (TCP or UDP) from addr to
// port of any resource at now.
func (g *Gate) Resource(resource string, port int, protocol string, addr netip.Addr, now time.Time) Result {
	if g == nil {
		return Result{Open: true}
	}
	if g.err != nil {
		return Result{Guarded: true, Err: g.err}
	}
	return g.find(resource, port).check(protocol, addr, now)
}

// Guards reports whether any policy protects a port of the application.
func (g *Gate) Guards(appID string) bool {
	if g == nil {
		return false
	}
	if g.err != nil {
		return true
	}
	for k := range g.apps {
		if k.app == appID {
			return true
		}
	}
	return false
}

func (gd *guard) check(protocol string, addr netip.Addr, now time.Time) Result {
	if gd == nil || (gd.protocol != ProtocolAny && gd.protocol != protocol) {
		return Result{Open: true}
	}
	res := Result{Guarded: true, Policy: gd.policy}
	t := now.UnixNano()
	addr = addr.Unmap()
	for i := range gd.grants {
		gr := &gd.grants[i]
		if t >= gr.end {
			continue
		}
		for _, s := range gr.sources {
			if s.Contains(addr) {
				if !res.Open || gr.end > res.Until.UnixNano() {
					res.Open, res.RequestID, res.Requestor, res.Until = true, gr.requestID, gr.requestor, time.Unix(0, gr.end).UTC()
				}
				break
			}
		}
	}
	return res
}
