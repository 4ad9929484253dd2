package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/verityhq/verity/internal/apply"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/store"
)

func (s *Server) registerApply() {
	rt := s.handle(http.MethodPost, v1+"/apply", "tenant.apply", allow("Verity.Tenant/manifest/write", "/"), s.apply)
	rt.MaxBody = s.opts.HTTP.ApplyMaxBodyBytes
	s.handle(http.MethodGet, v1+"/export", "tenant.export", allow("Verity.Tenant/manifest/read", "/"), s.export)
}

type applyResponse struct {
	DryRun   bool           `json:"dryRun"`
	Revision int64          `json:"revision,omitempty"`
	Changes  []apply.Change `json:"changes"`
	Summary  string         `json:"summary"`
}

// apply applies a tenant manifest in one transaction: all of it or none.
// ?dryRun=true returns the plan without writing; ?prune=true deletes what
// earlier applies created and the manifest no longer lists.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, c *call) error {
	opts := apply.Options{Sealer: s.opts.Sealer}
	for name, dst := range map[string]*bool{"dryRun": &opts.DryRun, "prune": &opts.Prune} {
		if v := r.URL.Query().Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be true or false", Target: name}
			}
			*dst = b
		}
	}
	// A manifest can grant roles: applying one needs that right too, or a
	// Contributor could make itself Owner.
	if err := s.require(r.Context(), s.opts.Live.Current(), c, decision.ActionGrantRoles, "/"); err != nil {
		return err
	}
	var m apply.Manifest
	if err := decodeJSON(r, &m); err != nil {
		return err
	}
	plan, rev, err := apply.Apply(r.Context(), s.opts.Store, &m, opts)
	if err != nil {
		return err
	}
	if !opts.DryRun {
		c.revision = rev
	}
	c.details = map[string]any{"dryRun": opts.DryRun, "prune": opts.Prune, "changes": len(plan.Changes)}
	return writeJSON(w, http.StatusOK, applyResponse{DryRun: opts.DryRun, Revision: rev, Changes: plan.Changes, Summary: plan.String()})
}

func (s *Server) export(w http.ResponseWriter, r *http.Request, c *call) error {
	var m *apply.Manifest
	err := s.opts.Store.View(r.Context(), func(ctx context.Context, rd store.Reader, _ int64) error {
		var err error
		m, err = apply.Export(ctx, rd)
		return err
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, m)
}
