package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// audit records one API call that did not record itself with its change
// (reads, refusals, failures, and writes outside the directory such as
// tokens and credentials). The record is written after the handler, on a
// context that survives a client hang-up; a failure is logged and
// counted, never silently dropped.
func (s *Server) audit(ctx context.Context, rt *Route, c *call, status int, r *http.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := s.opts.Store.AppendAudit(ctx, s.auditEvent(rt, c, status, r, nil)); err != nil {
		s.metrics.auditFailures.Inc()
		s.log.Error("audit: cannot record API call", "requestId", c.requestID, "action", rt.Name, "err", err)
	}
}

// recordFirst writes the call's audit event before a change the store's
// transactions do not carry (a credential): the change is made only when
// its record is written. The record has no status, like the records of
// changes written with them; a change that fails after it is recorded
// again as a failure.
func (s *Server) recordFirst(r *http.Request, c *call) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.opts.Store.AppendAudit(ctx, s.auditEvent(c.route, c, 0, r, nil)); err != nil {
		s.metrics.auditFailures.Inc()
		return fmt.Errorf("record the change before making it: %w", err)
	}
	c.recorded = true
	return nil
}

// auditEvent is the audit event of an API call with status; for a change
// recorded in its own transaction, before the response is written, status
// is 0 and changes lists what it wrote (the first maxAuditedChanges).
func (s *Server) auditEvent(rt *Route, c *call, status int, r *http.Request, changes []store.Change) store.AuditEvent {
	result := "success"
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		result = "denied"
	case status >= 400:
		result = "failure"
	}
	details := map[string]any{"method": r.Method}
	// The caller's address (behind http.trustedProxies, the client's).
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		details["ipAddress"] = host
	}
	for k, v := range c.details {
		details[k] = v
	}
	if c.revision > 0 {
		details["revision"] = c.revision
	}
	if len(changes) > 0 {
		type change struct {
			Kind string `json:"kind"`
			ID   string `json:"id"`
			Op   string `json:"op"`
		}
		list := make([]change, 0, min(len(changes), maxAuditedChanges))
		for _, ch := range changes[:min(len(changes), maxAuditedChanges)] {
			list = append(list, change{ch.Kind, ch.ID, string(ch.Op)})
		}
		details["changes"] = list
		details["changeCount"] = len(changes)
	}
	b, _ := json.Marshal(details)
	return store.AuditEvent{Time: time.Now().UTC(), RequestID: c.requestID, Actor: c.principal, Action: rt.Name,
		Target: r.URL.Path, Result: result, Status: status, Details: b}
}

// auditPaging reads the time window (from, to), page size ($top) and
// cursor ($skiptoken) of an audit log listing into q.
func auditPaging(qs url.Values, q *store.AuditQuery) error {
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"from", &q.Since}, {"to", &q.Until}} {
		if v := qs.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be an RFC 3339 time, e.g. 2026-01-31T09:00:00Z", Target: p.name}
			}
			*p.to = t
		}
	}
	if v := qs.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be an integer between 1 and 1000", Target: "$top"}
		}
		q.Limit = n
	}
	if v := qs.Get("$skiptoken"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "not a valid paging token", Target: "$skiptoken"}
		}
		q.BeforeSeq = n
	}
	return nil
}

// maxAuditedChanges bounds the changes an audit event lists (an apply
// may write thousands); changeCount says how many there were.
const maxAuditedChanges = 100

type auditEventJSON struct {
	ID                string          `json:"id"`
	LeafIndex         int64           `json:"leafIndex"` // the event's place in the audit log's Merkle tree
	ActivityDateTime  string          `json:"activityDateTime"`
	RequestID         string          `json:"requestId"`
	Actor             string          `json:"initiatedBy,omitempty"`
	ActivityName      string          `json:"activityDisplayName"`
	Target            string          `json:"target"`
	Result            string          `json:"result"`
	Status            int             `json:"status,omitempty"`
	AdditionalDetails json.RawMessage `json:"additionalDetails,omitempty"`
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	q := store.AuditQuery{Actor: qs.Get("actor"), Action: qs.Get("action"), Target: qs.Get("target"), Limit: 100}
	switch v := qs.Get("result"); v {
	case "", "success", "failure", "denied", "interrupted":
		q.Result = v
	default:
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be success, failure, denied or interrupted", Target: "result"}
	}
	if err := auditPaging(qs, &q); err != nil {
		return err
	}
	events, err := s.opts.Store.ListAudit(r.Context(), q)
	if err != nil {
		return err
	}
	out := make([]auditEventJSON, 0, len(events))
	for _, e := range events {
		out = append(out, auditEventJSON{
			ID: strconv.FormatInt(e.Seq, 10), LeafIndex: e.Index, ActivityDateTime: e.Time.UTC().Format(time.RFC3339Nano), RequestID: e.RequestID,
			Actor: e.Actor, ActivityName: e.Action, Target: e.Target, Result: e.Result, Status: e.Status, AdditionalDetails: e.Details,
		})
	}
	resp := map[string]any{"value": out}
	if len(events) == q.Limit && len(events) > 0 {
		next := url.Values{}
		for _, k := range []string{"actor", "action", "target", "result", "from", "to"} {
			if v := qs.Get(k); v != "" {
				next.Set(k, v)
			}
		}
		next.Set("$top", strconv.Itoa(q.Limit))
		next.Set("$skiptoken", strconv.FormatInt(events[len(events)-1].Seq, 10))
		resp["@odata.nextLink"] = r.URL.Path + "?" + next.Encode()
	}
	return writeJSON(w, http.StatusOK, resp)
}
