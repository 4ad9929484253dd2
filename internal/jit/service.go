package jit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// Service writes policies and requests, each change one store transaction
// carrying its audit record.
type Service struct {
	st store.Store
	// Now is the clock (tests inject theirs).
	Now func() time.Time
	// Retention is how long a request is kept after its last port closed
	// (default 30 days); the audit log keeps its history for good.
	Retention time.Duration
}

// New returns a service over st.
func New(st store.Store) *Service {
	return &Service{st: st, Now: time.Now, Retention: 30 * 24 * time.Hour}
}

func (s *Service) now() time.Time { return s.Now().UTC() }

// Caller is who asks: their id and name, the address their call came
// from (a request's default source) and what they may do where.
type Caller struct {
	ID, Name string
	Address  netip.Addr
	// May reports whether the caller holds an RBAC action at a scope.
	May func(action, scope string) bool
}

// Error is a refusal with a code and, when one property is at fault, its
// JSON path.
type Error struct {
	Code, Message, Field string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Is matches errors of the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errors a caller sees.
var (
	ErrNotFound  = &Error{Code: "NotFound", Message: "no such policy or request"}
	ErrForbidden = &Error{Code: "AuthorizationFailed", Message: "the caller may not do this on the resource"}
	ErrConflict  = &Error{Code: "Conflict", Message: "the policy changed meanwhile; read it again"}
)

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: "InvalidJitNetworkAccessRequest", Field: field, Message: fmt.Sprintf(format, args...)}
}

func forbidden(action, scope string) *Error {
	return &Error{Code: ErrForbidden.Code, Message: fmt.Sprintf("the caller may not do %s at %s", action, scope)}
}

// AuditActor is the actor of what time does (expiry, pruning).
const AuditActor = "verity-jit"

// update runs fn in a transaction whose audit record is action on target
// with the details fn leaves.
func (s *Service) update(ctx context.Context, actor, action string, fn func(ctx context.Context, tx store.Tx) (target string, details map[string]any, err error)) (int64, error) {
	var target string
	var details map[string]any
	ctx, _ = store.AuditWith(ctx, func(rev int64, _ []store.Change) store.AuditEvent {
		if details == nil {
			details = map[string]any{}
		}
		details["revision"] = rev
		b, _ := json.Marshal(details)
		return store.AuditEvent{Time: s.now(), Actor: actor, Action: action, Target: target, Result: "success", Details: b}
	})
	return s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		target, details, err = fn(ctx, tx)
		return err
	})
}

func policyKey(name string) string { return strings.ToLower(name) }

func getPolicy(ctx context.Context, r store.Reader, name string) (*Policy, int64, error) {
	o, err := r.Get(ctx, PolicyKind, policyKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	var p Policy
	if err := json.Unmarshal(o.Body, &p); err != nil {
		return nil, 0, fmt.Errorf("jit policy %s: %w", o.ID, err)
	}
	return &p, o.Revision, nil
}

// Policies lists every policy (without requests).
func Policies(ctx context.Context, r store.Reader) ([]Policy, error) {
	var out []Policy
	err := store.Each(ctx, r, PolicyKind, func(o store.Object) error {
		var p Policy
		if err := json.Unmarshal(o.Body, &p); err != nil {
			return fmt.Errorf("jit policy %s: %w", o.ID, err)
		}
		out = append(out, p.output())
		return nil
	})
	return out, err
}

// GetPolicy reads a policy with its requests as they stand at now, most
// recent first.
func GetPolicy(ctx context.Context, r store.Reader, name string, now time.Time) (Policy, error) {
	p, _, err := getPolicy(ctx, r, name)
	if err != nil {
		return Policy{}, err
	}
	out := p.output()
	reqs, err := Requests(ctx, r, func(q *Request) bool { return strings.EqualFold(q.Policy, p.Name) })
	if err != nil {
		return Policy{}, err
	}
	for _, q := range reqs {
		out.Properties.Requests = append(out.Properties.Requests, q.AsOf(now))
	}
	return out, nil
}

// output is the policy as the API shows it.
func (p Policy) output() Policy {
	p.ID, p.Type, p.Properties.ProvisioningState = PolicyID(p.Name), ResourceType, "Succeeded"
	return p
}

// Requests lists the requests keep accepts, most recent first.
func Requests(ctx context.Context, r store.Reader, keep func(*Request) bool) ([]Request, error) {
	var out []Request
	err := eachRequest(ctx, r, func(q *Request, _ int64) error {
		if keep == nil || keep(q) {
			out = append(out, *q)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Request) int {
		if c := b.StartTimeUtc.Compare(a.StartTimeUtc); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

func eachRequest(ctx context.Context, r store.Reader, fn func(*Request, int64) error) error {
	return store.Each(ctx, r, RequestKind, func(o store.Object) error {
		var q Request
		if err := json.Unmarshal(o.Body, &q); err != nil {
			return fmt.Errorf("jit request %s: %w", o.ID, err)
		}
		return fn(&q, o.Revision)
	})
}

// requestPrefix starts the IDs of a requester's requests, so that they
// are one range of IDs: a request finds the requester's older ones
// without reading anyone else's.
func requestPrefix(requestorID string) string { return strings.ToLower(requestorID) + "." }

// eachRequestOf calls fn for the requests of one requester.
func eachRequestOf(ctx context.Context, r store.Reader, requestorID string, fn func(*Request, int64) error) error {
	return store.EachPrefixed(ctx, r, RequestKind, requestPrefix(requestorID), "", func(o store.Object) (bool, error) {
		var q Request
		if err := json.Unmarshal(o.Body, &q); err != nil {
			return false, fmt.Errorf("jit request %s: %w", o.ID, err)
		}
		return true, fn(&q, o.Revision)
	})
}

// GetRequest reads one request as it stands at now.
func GetRequest(ctx context.Context, r store.Reader, id string, now time.Time) (Request, error) {
	o, err := r.Get(ctx, RequestKind, strings.ToLower(id))
	if errors.Is(err, store.ErrNotFound) {
		return Request{}, ErrNotFound
	}
	if err != nil {
		return Request{}, err
	}
	var q Request
	if err := json.Unmarshal(o.Body, &q); err != nil {
		return Request{}, fmt.Errorf("jit request %s: %w", o.ID, err)
	}
	return q.AsOf(now), nil
}

// PutPolicy creates or replaces a policy. The caller needs write at every
// resource it protects, and — replacing one — at every resource it
// protected (taking protection off is a change there too). A resource is
// protected by one policy at most. The store revision of the change is
// returned, for callers that wait for their snapshot to show it.
func (s *Service) PutPolicy(ctx context.Context, caller Caller, p Policy) (out Policy, created bool, rev int64, err error) {
	p.Properties.Requests, p.ID, p.Type, p.Properties.ProvisioningState = nil, "", "", ""
	p.Normalize()
	if err := p.Validate(); err != nil {
		return Policy{}, false, 0, err
	}
	for _, r := range p.Properties.VirtualMachines {
		if !caller.May(ActionWrite, r.ID) {
			return Policy{}, false, 0, forbidden(ActionWrite, r.ID)
		}
	}
	rev, err = s.update(ctx, caller.ID, "jit.policy.write", func(ctx context.Context, tx store.Tx) (string, map[string]any, error) {
		old, rev, err := getPolicy(ctx, tx, p.Name)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", nil, err
		}
		created = old == nil
		if old != nil {
			for _, r := range old.Properties.VirtualMachines {
				if !caller.May(ActionWrite, r.ID) {
					return "", nil, forbidden(ActionWrite, r.ID)
				}
			}
		}
		err = store.Each(ctx, tx, PolicyKind, func(o store.Object) error {
			if o.ID == policyKey(p.Name) {
				return nil
			}
			var other Policy
			if err := json.Unmarshal(o.Body, &other); err != nil {
				return fmt.Errorf("jit policy %s: %w", o.ID, err)
			}
			for i, r := range p.Properties.VirtualMachines {
				if other.resource(r.ID) != nil {
					return invalid(fmt.Sprintf("properties.virtualMachines[%d].id", i), "%s is already protected by policy %s", r.ID, other.Name)
				}
			}
			return nil
		})
		if err != nil {
			return "", nil, err
		}
		body, err := json.Marshal(p)
		if err != nil {
			return "", nil, err
		}
		obj := store.Object{Kind: PolicyKind, ID: policyKey(p.Name), Body: body}
		if created {
			err = tx.Create(ctx, obj)
		} else {
			err = tx.Update(ctx, obj, rev)
		}
		if errors.Is(err, store.ErrConflict) {
			return "", nil, ErrConflict
		}
		return PolicyID(p.Name), map[string]any{"name": p.Name, "created": created, "virtualMachines": p.Properties.VirtualMachines}, err
	})
	if err != nil {
		return Policy{}, false, 0, err
	}
	return p.output(), created, rev, nil
}

// DeletePolicy removes a policy; its ports are then no longer closed. The
// caller needs delete at every resource it protects.
func (s *Service) DeletePolicy(ctx context.Context, caller Caller, name string) (int64, error) {
	return s.update(ctx, caller.ID, "jit.policy.delete", func(ctx context.Context, tx store.Tx) (string, map[string]any, error) {
		p, _, err := getPolicy(ctx, tx, name)
		if err != nil {
			return "", nil, err
		}
		for _, r := range p.Properties.VirtualMachines {
			if !caller.May(ActionDelete, r.ID) {
				return "", nil, forbidden(ActionDelete, r.ID)
			}
		}
		return PolicyID(p.Name), map[string]any{"name": p.Name}, tx.Delete(ctx, PolicyKind, policyKey(p.Name))
	})
}

// maxSkew is how far past a port's maximum a requested end may lie (the
// requester's clock, the trip here) before it is refused rather than
// brought back to the maximum.
const maxSkew = time.Minute

const maxJustification = 1000

// Initiate opens the requested ports. Each must be a port of a resource
// of the policy, asked for by a caller who may initiate at the resource,
// from sources inside the port's allowed ones (the caller's address when
// none is named), until an end after now and within the port's maximum.
// The requester's earlier requests for the same ports are revoked
// (NewerRequestInitiated).
func (s *Service) Initiate(ctx context.Context, caller Caller, policyName string, in InitiateRequest) (Request, int64, error) {
	now := s.now()
	if len(in.VirtualMachines) == 0 || len(in.VirtualMachines) > maxResources {
		return Request{}, 0, invalid("virtualMachines", "must list 1 to %d resources", maxResources)
	}
	if len(in.Justification) > maxJustification {
		return Request{}, 0, invalid("justification", "at most %d characters", maxJustification)
	}
	q := Request{ID: requestPrefix(caller.ID) + uuid.NewString(), StartTimeUtc: now, Requestor: caller.Name, RequestorID: caller.ID, Justification: in.Justification}
	if q.Requestor == "" {
		q.Requestor = caller.ID
	}
	rev, err := s.update(ctx, caller.ID, "jit.initiate", func(ctx context.Context, tx store.Tx) (string, map[string]any, error) {
		p, _, err := getPolicy(ctx, tx, policyName)
		if err != nil {
			return "", nil, err
		}
		q.Policy = p.Name
		q.VirtualMachines = q.VirtualMachines[:0]
		type portRef struct {
			resource string
			port     int
		}
		asked := map[portRef]bool{}
		for i, vm := range in.VirtualMachines {
			at := fmt.Sprintf("virtualMachines[%d]", i)
			res := p.resource(vm.ID)
			if res == nil {
				return "", nil, invalid(at+".id", "%s is not protected by policy %s", vm.ID, p.Name)
			}
			if !caller.May(ActionInitiate, res.ID) {
				return "", nil, forbidden(ActionInitiate, res.ID)
			}
			if len(vm.Ports) == 0 || len(vm.Ports) > maxPorts {
				return "", nil, invalid(at+".ports", "must list 1 to %d ports", maxPorts)
			}
			out := RequestResource{ID: res.ID}
			for j, ip := range vm.Ports {
				pat := fmt.Sprintf("%s.ports[%d]", at, j)
				port := res.port(ip.Number)
				if port == nil {
					return "", nil, invalid(pat+".number", "port %d of %s is not protected by policy %s", ip.Number, res.ID, p.Name)
				}
				ref := portRef{strings.ToLower(res.ID), ip.Number}
				if asked[ref] {
					return "", nil, invalid(pat+".number", "port %d of %s is asked for twice", ip.Number, res.ID)
				}
				asked[ref] = true
				rp, err := requestPort(pat, port, ip, caller.Address, now)
				if err != nil {
					return "", nil, err
				}
				out.Ports = append(out.Ports, rp)
			}
			q.VirtualMachines = append(q.VirtualMachines, out)
		}
		// The requester's earlier requests for these ports give way.
		var superseded []string
		err = eachRequestOf(ctx, tx, caller.ID, func(old *Request, rev int64) error {
			if old.RequestorID != caller.ID || !strings.EqualFold(old.Policy, p.Name) || !old.Open(now) {
				return nil
			}
			changed := false
			for i := range old.VirtualMachines {
				vm := &old.VirtualMachines[i]
				for j := range vm.Ports {
					pt := &vm.Ports[j]
					if pt.openAt(now) && asked[portRef{strings.ToLower(vm.ID), pt.Number}] {
						pt.Status, pt.StatusReason, pt.RevokedTimeUtc = StatusRevoked, ReasonNewerRequestInitiated, &now
						changed = true
					}
				}
			}
			if !changed {
				return nil
			}
			superseded = append(superseded, old.ID)
			return putRequest(ctx, tx, old, rev)
		})
		if err != nil {
			return "", nil, err
		}
		if err := putRequest(ctx, tx, &q, 0); err != nil {
			return "", nil, err
		}
		details := map[string]any{"policy": p.Name, "requestId": q.ID, "virtualMachines": q.VirtualMachines, "requestor": q.Requestor}
		if q.Justification != "" {
			details["justification"] = q.Justification
		}
		if len(superseded) > 0 {
			details["superseded"] = superseded
		}
		return "/jit/requests/" + q.ID, details, nil
	})
	if err != nil {
		return Request{}, 0, err
	}
	return q, rev, nil
}

// requestPort checks one asked-for port against the policy's.
func requestPort(at string, port *Port, in InitiatePort, caller netip.Addr, now time.Time) (RequestPort, error) {
	if in.StartTimeUtc != nil && in.StartTimeUtc.After(now.Add(maxSkew)) {
		return RequestPort{}, invalid(at+".startTimeUtc", "access starts when it is asked for; a later start is not supported")
	}
	end := in.EndTimeUtc.UTC()
	max := port.MaxRequestAccessDuration.D()
	switch {
	case in.EndTimeUtc.IsZero():
		return RequestPort{}, invalid(at+".endTimeUtc", "is required")
	case !end.After(now):
		return RequestPort{}, invalid(at+".endTimeUtc", "%s has passed", end.Format(time.RFC3339))
	case end.After(now.Add(max + maxSkew)):
		return RequestPort{}, invalid(at+".endTimeUtc", "more than the port's maximum of %s from now", schedule.FormatISODuration(max))
	case end.After(now.Add(max)):
		end = now.Add(max)
	}
	asked := in.AllowedSourceAddressPrefixes
	if in.AllowedSourceAddressPrefix != "" {
		if len(asked) > 0 {
			return RequestPort{}, invalid(at, "set at most one of allowedSourceAddressPrefix and allowedSourceAddressPrefixes")
		}
		asked = []string{in.AllowedSourceAddressPrefix}
	}
	if len(asked) == 0 {
		if !caller.IsValid() {
			return RequestPort{}, invalid(at+".allowedSourceAddressPrefix", "is required: the caller's address is not known")
		}
		asked = []string{caller.String()}
	}
	if len(asked) > maxPrefixes {
		return RequestPort{}, invalid(at+".allowedSourceAddressPrefixes", "at most %d prefixes", maxPrefixes)
	}
	allowed, err := port.Sources()
	if err != nil {
		return RequestPort{}, err
	}
	for _, s := range asked {
		if s == "*" {
			if allowed != nil {
				return RequestPort{}, invalid(at+".allowedSourceAddressPrefix", "* is wider than the port's allowed sources")
			}
			continue
		}
		pfx, err := ParsePrefix(s)
		if err != nil {
			return RequestPort{}, invalid(at+".allowedSourceAddressPrefix", "%v", err)
		}
		if allowed != nil && !within(pfx, allowed) {
			return RequestPort{}, invalid(at+".allowedSourceAddressPrefix", "%s is outside the port's allowed sources", s)
		}
	}
	rp := RequestPort{Number: port.Number, EndTimeUtc: end, Status: StatusInitiated, StatusReason: ReasonUserRequested}
	if len(asked) == 1 {
		rp.AllowedSourceAddressPrefix = asked[0]
	} else {
		rp.AllowedSourceAddressPrefixes = asked
	}
	return rp, nil
}

// within reports whether p lies inside one of the prefixes.
func within(p netip.Prefix, in []netip.Prefix) bool {
	for _, a := range in {
		if a.Addr().Is4() == p.Addr().Is4() && a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func putRequest(ctx context.Context, tx store.Tx, q *Request, rev int64) error {
	body, err := json.Marshal(q)
	if err != nil {
		return err
	}
	obj := store.Object{Kind: RequestKind, ID: strings.ToLower(q.ID), Body: body}
	if rev == 0 {
		return tx.Create(ctx, obj)
	}
	return tx.Update(ctx, obj, rev)
}

// Revoke closes a request's open ports now. The requester may, and so
// may whoever may write the policy at every resource of the request.
func (s *Service) Revoke(ctx context.Context, caller Caller, id string) (Request, int64, error) {
	now := s.now()
	var out Request
	rev, err := s.update(ctx, caller.ID, "jit.revoke", func(ctx context.Context, tx store.Tx) (string, map[string]any, error) {
		o, err := tx.Get(ctx, RequestKind, strings.ToLower(id))
		if errors.Is(err, store.ErrNotFound) {
			return "", nil, ErrNotFound
		}
		if err != nil {
			return "", nil, err
		}
		var q Request
		if err := json.Unmarshal(o.Body, &q); err != nil {
			return "", nil, fmt.Errorf("jit request %s: %w", o.ID, err)
		}
		if q.RequestorID != caller.ID {
			for _, vm := range q.VirtualMachines {
				if !caller.May(ActionWrite, vm.ID) {
					return "", nil, forbidden(ActionWrite, vm.ID)
				}
			}
		}
		if !q.Open(now) {
			return "", nil, &Error{Code: "RequestNotOpen", Message: "the request has no open port left"}
		}
		closeOpen(&q, now, ReasonUserRequested)
		out = q
		return "/jit/requests/" + q.ID, map[string]any{"policy": q.Policy, "requestId": q.ID, "requestor": q.Requestor}, putRequest(ctx, tx, &q, o.Revision)
	})
	return out.AsOf(now), rev, err
}

// closeOpen revokes every port of q open at now, for reason.
func closeOpen(q *Request, now time.Time, reason string) {
	for i := range q.VirtualMachines {
		for j := range q.VirtualMachines[i].Ports {
			p := &q.VirtualMachines[i].Ports[j]
			if p.openAt(now) {
				p.Status, p.StatusReason, p.RevokedTimeUtc = StatusRevoked, reason, &now
			}
		}
	}
}

// Sweep records the ports time has closed (Revoked, Expired; one audit
// record per request) and removes requests closed for longer than the
// retention. Decisions never wait for it: they compare end times.
func (s *Service) Sweep(ctx context.Context) (expired, pruned int, err error) {
	now := s.now()
	type due struct {
		id    string
		prune bool
	}
	var work []due
	err = eachRequest(ctx, s.st, func(q *Request, _ int64) error {
		for _, vm := range q.VirtualMachines {
			for _, p := range vm.Ports {
				if p.Status == StatusInitiated && !now.Before(p.EndTimeUtc) {
					work = append(work, due{id: q.ID})
					return nil
				}
			}
		}
		if !q.Open(now) && now.Sub(q.lastEnd()) > s.Retention {
			work = append(work, due{id: q.ID, prune: true})
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	for _, w := range work {
		action := "jit.expire"
		if w.prune {
			action = "jit.prune"
		}
		done := false
		_, err := s.update(ctx, AuditActor, action, func(ctx context.Context, tx store.Tx) (string, map[string]any, error) {
			o, err := tx.Get(ctx, RequestKind, strings.ToLower(w.id))
			if errors.Is(err, store.ErrNotFound) {
				return "", nil, errNothing
			}
			if err != nil {
				return "", nil, err
			}
			var q Request
			if err := json.Unmarshal(o.Body, &q); err != nil {
				return "", nil, fmt.Errorf("jit request %s: %w", o.ID, err)
			}
			details := map[string]any{"policy": q.Policy, "requestId": q.ID, "requestor": q.Requestor}
			if w.prune {
				done = true
				return "/jit/requests/" + q.ID, details, tx.Delete(ctx, RequestKind, o.ID)
			}
			changed := false
			for i := range q.VirtualMachines {
				for j := range q.VirtualMachines[i].Ports {
					p := &q.VirtualMachines[i].Ports[j]
					if p.Status == StatusInitiated && !now.Before(p.EndTimeUtc) {
						p.Status, p.StatusReason = StatusRevoked, ReasonExpired
						changed = true
					}
				}
			}
			if !changed {
				return "", nil, errNothing
			}
			done = true
			return "/jit/requests/" + q.ID, details, putRequest(ctx, tx, &q, o.Revision)
		})
		switch {
		case errors.Is(err, errNothing), errors.Is(err, store.ErrConflict):
			// Another node got there first, or the request changed: the
			// next sweep looks again.
		case err != nil:
			return expired, pruned, err
		case done && w.prune:
			pruned++
		case done:
			expired++
		}
	}
	return expired, pruned, nil
}

var errNothing = errors.New("nothing to do")

// Run sweeps every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
