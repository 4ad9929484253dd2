package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/jit"
	"github.com/verityhq/verity/internal/strictjson"
)

// Just-in-time network access (docs/jit.md), in Defender for Cloud's
// shapes. Every route needs only a signed-in caller: the service checks
// Defender's actions (jitNetworkAccessPolicies read, write, delete,
// initiate/action) at each protected resource the call touches.
func (s *Server) registerJIT() {
	const base = v1 + "/jit"
	s.handle(http.MethodGet, base+"/policies", "jit.policies.list", authenticated, s.listJITPolicies)
	s.handle(http.MethodGet, base+"/policies/{name}", "jit.policies.get", authenticated, s.getJITPolicy)
	s.handle(http.MethodPut, base+"/policies/{name}", "jit.policies.put", authenticated, s.putJITPolicy)
	s.handle(http.MethodDelete, base+"/policies/{name}", "jit.policies.delete", authenticated, s.deleteJITPolicy)
	s.handle(http.MethodPost, base+"/policies/{name}/initiate", "jit.policies.initiate", authenticated, s.initiateJIT)
	s.handle(http.MethodGet, base+"/requests", "jit.requests.list", authenticated, s.listJITRequests)
	s.handle(http.MethodGet, base+"/requests/{id}", "jit.requests.get", authenticated, s.getJITRequest)
	s.handle(http.MethodPost, base+"/requests/{id}/revoke", "jit.requests.revoke", authenticated, s.revokeJIT)
}

func (s *Server) jitService() *jit.Service { return jit.New(s.opts.Store) }

// jitCaller is the caller as the JIT service sees it.
func (s *Server) jitCaller(r *http.Request, c *call) jit.Caller {
	name := c.principal
	if u, ok := s.opts.Live.Current().Directory().User(c.principal); ok && u.UserPrincipalName != "" {
		name = u.UserPrincipalName
	}
	return jit.Caller{ID: c.principal, Name: name, Address: remoteAddr(r),
		May: func(action, scope string) bool { return s.may(r, c, action, scope) }}
}

// mayReadJIT: the caller may read policies at one of the resources.
func (s *Server) mayReadJIT(r *http.Request, c *call, resources []string) bool {
	for _, id := range resources {
		if s.may(r, c, jit.ActionRead, id) {
			return true
		}
	}
	return false
}

func policyResources(p *jit.Policy) []string {
	out := make([]string, 0, len(p.Properties.VirtualMachines))
	for _, vm := range p.Properties.VirtualMachines {
		out = append(out, vm.ID)
	}
	return out
}

func requestResources(q *jit.Request) []string {
	out := make([]string, 0, len(q.VirtualMachines))
	for _, vm := range q.VirtualMachines {
		out = append(out, vm.ID)
	}
	return out
}

// jitProblem turns the service's refusals into problems.
func jitProblem(err error) error {
	var je *jit.Error
	if !errors.As(err, &je) {
		return err
	}
	status := http.StatusBadRequest
	switch je.Code {
	case jit.ErrForbidden.Code:
		status = http.StatusForbidden
	case jit.ErrNotFound.Code:
		status = http.StatusNotFound
	case jit.ErrConflict.Code, "RequestNotOpen":
		status = http.StatusConflict
	}
	return &Problem{Status: status, Code: je.Code, Message: je.Message, Target: je.Field, Err: err}
}

// waitJIT waits (briefly) until this node's snapshot shows revision, so
// the caller's next request through a proxy on this node meets the change.
func (s *Server) waitJIT(ctx context.Context, rev int64) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, _ = s.opts.Live.WaitFor(ctx, rev)
}

// listJITPolicies: GET /jit/policies — those the caller may read.
func (s *Server) listJITPolicies(w http.ResponseWriter, r *http.Request, c *call) error {
	all, err := jit.Policies(r.Context(), s.opts.Store)
	if err != nil {
		return err
	}
	out := []jit.Policy{}
	for i := range all {
		if s.mayReadJIT(r, c, policyResources(&all[i])) {
			out = append(out, all[i])
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// getJITPolicy: GET /jit/policies/{name}, with its requests.
func (s *Server) getJITPolicy(w http.ResponseWriter, r *http.Request, c *call) error {
	p, err := jit.GetPolicy(r.Context(), s.opts.Store, r.PathValue("name"), time.Now())
	if err != nil {
		return jitProblem(err)
	}
	if !s.mayReadJIT(r, c, policyResources(&p)) {
		return jitProblem(jit.ErrNotFound) // not the caller's to see
	}
	return writeJSON(w, http.StatusOK, p)
}

// putJITPolicy: PUT /jit/policies/{name} with a jitNetworkAccessPolicy
// (Defender's body; requests in it are ignored — they are the service's).
func (s *Server) putJITPolicy(w http.ResponseWriter, r *http.Request, c *call) error {
	var p jit.Policy
	if err := decodeJSON(r, &p); err != nil {
		return err
	}
	name := r.PathValue("name")
	if p.Name != "" && p.Name != name {
		return invalid(strictjson.Errorf("name", "%q differs from the name in the path, %q", p.Name, name))
	}
	p.Name = name
	out, created, rev, err := s.jitService().PutPolicy(r.Context(), s.jitCaller(r, c), p)
	if err != nil {
		return jitProblem(err)
	}
	c.recorded = true // the transaction carried its audit record
	s.waitJIT(r.Context(), rev)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, out)
}

func (s *Server) deleteJITPolicy(w http.ResponseWriter, r *http.Request, c *call) error {
	rev, err := s.jitService().DeletePolicy(r.Context(), s.jitCaller(r, c), r.PathValue("name"))
	if err != nil {
		return jitProblem(err)
	}
	c.recorded = true
	s.waitJIT(r.Context(), rev)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// initiateJIT: POST /jit/policies/{name}/initiate with Defender's
// initiate body → 202 and the request.
func (s *Server) initiateJIT(w http.ResponseWriter, r *http.Request, c *call) error {
	var in jit.InitiateRequest
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	q, rev, err := s.jitService().Initiate(r.Context(), s.jitCaller(r, c), r.PathValue("name"), in)
	if err != nil {
		return jitProblem(err)
	}
	c.recorded = true
	s.waitJIT(r.Context(), rev)
	return writeJSON(w, http.StatusAccepted, q)
}

// listJITRequests: GET /jit/requests[?policy=&open=true]. A caller sees
// their own requests and those on resources whose policies they may read.
func (s *Server) listJITRequests(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	now := time.Now()
	list, err := jit.Requests(r.Context(), s.opts.Store, func(q *jit.Request) bool {
		if v := qs.Get("policy"); v != "" && !strings.EqualFold(q.Policy, v) {
			return false
		}
		if qs.Get("open") == "true" && !q.Open(now) {
			return false
		}
		return q.RequestorID == c.principal || s.mayReadJIT(r, c, requestResources(q))
	})
	if err != nil {
		return err
	}
	out := make([]jit.Request, 0, len(list))
	for _, q := range list {
		out = append(out, q.AsOf(now))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (s *Server) getJITRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	q, err := jit.GetRequest(r.Context(), s.opts.Store, r.PathValue("id"), time.Now())
	if err != nil {
		return jitProblem(err)
	}
	if q.RequestorID != c.principal && !s.mayReadJIT(r, c, requestResources(&q)) {
		return jitProblem(jit.ErrNotFound)
	}
	return writeJSON(w, http.StatusOK, q)
}

// revokeJIT: POST /jit/requests/{id}/revoke closes the request's open
// ports now (the requester, or whoever may write the policy).
func (s *Server) revokeJIT(w http.ResponseWriter, r *http.Request, c *call) error {
	q, rev, err := s.jitService().Revoke(r.Context(), s.jitCaller(r, c), r.PathValue("id"))
	if err != nil {
		return jitProblem(err)
	}
	c.recorded = true
	s.waitJIT(r.Context(), rev)
	return writeJSON(w, http.StatusOK, q)
}
