package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// audit records one API call. The record is written after the handler, on
// a context that survives a client hang-up; a failure is logged and
// counted, never silently dropped.
func (s *Server) audit(ctx context.Context, rt *Route, c *call, status int, r *http.Request) {
	result := "success"
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		result = "denied"
	case status >= 400:
		result = "failure"
	}
	details := map[string]any{"method": r.Method}
	for k, v := range c.details {
		details[k] = v
	}
	if c.revision > 0 {
		details["revision"] = c.revision
	}
	b, _ := json.Marshal(details)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := s.opts.Store.AppendAudit(ctx, store.AuditEvent{
		Time: time.Now().UTC(), RequestID: c.requestID, Actor: c.principal, Action: rt.Name,
		Target: r.URL.Path, Result: result, Status: status, Details: b,
	})
	if err != nil {
		s.metrics.auditFailures.Inc()
		s.log.Error("audit: cannot record API call", "requestId", c.requestID, "action", rt.Name, "err", err)
	}
}

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
