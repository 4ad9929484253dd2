package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// listSignIns serves the sign-in log: every interactive sign-in attempt as
// Graph's signIn resource, newest first, filtered by user, application,
// status and time, paged like the audit log. With Accept:
// application/x-ndjson it answers one event per line, for export.
func (s *Server) listSignIns(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	q := store.AuditQuery{Action: signin.AuditAction, Actor: qs.Get("userId"), Limit: 100}
	if v := qs.Get("appId"); v != "" {
		q.Target = "/applications/" + v
	}
	switch v := qs.Get("status"); v {
	case "", "success", "failure", "interrupted":
		q.Result = v
	default:
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be success, failure or interrupted", Target: "status"}
	}
	if err := auditPaging(qs, &q); err != nil {
		return err
	}
	events, err := s.opts.Store.ListAudit(r.Context(), q)
	if err != nil {
		return err
	}
	next := ""
	if len(events) == q.Limit && len(events) > 0 {
		v := url.Values{}
		for _, k := range []string{"userId", "appId", "status", "from", "to"} {
			if x := qs.Get(k); x != "" {
				v.Set(k, x)
			}
		}
		v.Set("$top", strconv.Itoa(q.Limit))
		v.Set("$skiptoken", strconv.FormatInt(events[len(events)-1].Seq, 10))
		next = r.URL.Path + "?" + v.Encode()
	}
	c.details = map[string]any{"count": len(events)}
	if r.Header.Get("Accept") == "application/x-ndjson" {
		w.Header().Set("Content-Type", "application/x-ndjson")
		if next != "" {
			w.Header().Set("Link", "<"+next+`>; rel="next"`)
		}
		w.WriteHeader(http.StatusOK)
		for _, e := range events {
			_, _ = w.Write(append(compactJSON(e.Details), '\n'))
		}
		return nil
	}
	out := make([]json.RawMessage, 0, len(events))
	for _, e := range events {
		out = append(out, e.Details)
	}
	resp := map[string]any{"value": out}
	if next != "" {
		resp["@odata.nextLink"] = next
	}
	return writeJSON(w, http.StatusOK, resp)
}

// compactJSON returns b without insignificant space (b as it is when it
// is not JSON, which the store never holds).
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}
