package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// Alerts raised by the detectors (docs/detect.md): list, read,
// acknowledge, close.

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	names := detect.DetectorNames()
	if d := qs.Get("detector"); d != "" {
		if !slices.Contains(names, d) {
			return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "no such detector", Target: "detector"}
		}
		names = []string{d}
	}
	status := qs.Get("status")
	switch status {
	case "", detect.StatusNew, detect.StatusAcknowledged, detect.StatusClosed:
	default:
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be new, acknowledged or closed", Target: "status"}
	}
	limit := 100
	if v := qs.Get("$top"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be an integer between 1 and 1000", Target: "$top"}
		}
		limit = n
	}
	var out []detect.StoredAlert
	for _, d := range names {
		as, err := detect.Alerts(r.Context(), s.opts.Store, d, 1000)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.Status == "" {
				a.Status = detect.StatusNew
			}
			if status == "" || a.Status == status {
				out = append(out, a)
			}
		}
	}
	slices.SortFunc(out, func(a, b detect.StoredAlert) int { return b.Raised.Compare(a.Raised) })
	if len(out) > limit {
		out = out[:limit]
	}
	if out == nil {
		out = []detect.StoredAlert{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, c *call) error {
	a, _, err := detect.GetAlert(r.Context(), s.opts.Store, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no alert with this id", Target: "id"}
	}
	if err != nil {
		return err
	}
	// The automated responses taken on it, with the alert.
	responses, err := detect.Responses(r.Context(), s.opts.Store, a.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		detect.StoredAlert
		Responses []detect.Response `json:"responses"`
	}{a, responses})
}

// updateAlert: POST /security/alerts/{id}/acknowledge or /close, with an
// optional {"comment": "..."}.
func (s *Server) updateAlert(status string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var req struct {
			Comment string `json:"comment"`
		}
		if r.ContentLength != 0 {
			if err := decodeJSON(r, &req); err != nil {
				return err
			}
		}
		if len(req.Comment) > 2000 {
			return invalid(strictjson.Errorf("comment", "must be at most 2000 characters"))
		}
		id := r.PathValue("id")
		if _, _, err := detect.GetAlert(r.Context(), s.opts.Store, id); errors.Is(err, store.ErrNotFound) {
			return &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no alert with this id", Target: "id"}
		} else if err != nil {
			return err
		}
		c.details = map[string]any{"id": id, "status": status}
		if err := s.recordFirst(r, c); err != nil {
			return err
		}
		a, err := detect.SetAlertStatus(r.Context(), s.opts.Store, id, status, c.principal, req.Comment)
		if errors.Is(err, store.ErrConflict) {
			return &Problem{Status: http.StatusConflict, Code: CodeConflict, Message: "the alert is closed", Target: "id"}
		}
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, a)
	}
}
