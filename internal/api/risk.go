package api

import (
	"errors"
	"net/http"

	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// Risky users, in the shape of Microsoft Graph's identityProtection
// riskyUsers: list, confirm compromised, dismiss.

type riskyUserJSON struct {
	ID                      string   `json:"id"`
	UserPrincipalName       string   `json:"userPrincipalName,omitempty"`
	RiskLevel               string   `json:"riskLevel"`
	RiskState               string   `json:"riskState"`
	RiskDetail              string   `json:"riskDetail,omitempty"`
	RiskLastUpdatedDateTime string   `json:"riskLastUpdatedDateTime"`
	Detections              []string `json:"detections"`
}

func riskyUser(r detect.UserRisk) riskyUserJSON {
	d := r.Detections
	if d == nil {
		d = []string{}
	}
	return riskyUserJSON{ID: r.UserID, UserPrincipalName: r.User, RiskLevel: r.Level, RiskState: r.State, RiskDetail: r.Detail,
		RiskLastUpdatedDateTime: r.Updated.Format("2006-01-02T15:04:05Z07:00"), Detections: d}
}

func (s *Server) listRiskyUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	list, err := detect.RiskyUsers(r.Context(), s.opts.Store, 1000)
	if err != nil {
		return err
	}
	out := make([]riskyUserJSON, 0, len(list))
	for _, u := range list {
		out = append(out, riskyUser(u))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// setRisk: POST /identityProtection/riskyUsers/confirmCompromised or
// /dismiss with {"userIds": [...]} (ids or userPrincipalNames), as Graph.
func (s *Server) setRisk(state string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var req struct {
			UserIDs []string `json:"userIds"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		if len(req.UserIDs) == 0 || len(req.UserIDs) > 60 {
			return invalid(strictjson.Errorf("userIds", "must name 1 to 60 users"))
		}
		type target struct{ id, upn string }
		var targets []target
		k := directoryKind(directory.Users, true, "", "")
		for i, v := range req.UserIDs {
			obj, err := find(r.Context(), s.opts.Store, k, v)
			if errors.Is(err, store.ErrNotFound) {
				return &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such user", Target: strictjson.Index("userIds", i)}
			}
			if err != nil {
				return err
			}
			targets = append(targets, target{obj.ID, obj.Key})
		}
		ids := make([]string, len(targets))
		for i, t := range targets {
			ids[i] = t.id
		}
		c.details = map[string]any{"userIds": ids, "riskState": state}
		if err := s.recordFirst(r, c); err != nil {
			return err
		}
		for _, t := range targets {
			if _, err := detect.SetUserRiskState(r.Context(), s.opts.Store, t.id, t.upn, state); err != nil {
				return err
			}
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
