package api

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// Access reviews (docs/access-reviews.md). A definition is managed by
// whoever may write role assignments at its resource scope (/directory
// for directory roles), as PIM's settings are; its reviewers see it and
// its instances; each caller lists and decides the items the service
// lets them decide. The handlers check; the routes need only a token.

// accessReviews registers the access review routes under base.
func (s *Server) accessReviews(base string) {
	s.handle(http.MethodGet, base+"/definitions", "accessReviews.definitions.list", authenticated, s.listReviews)
	s.handle(http.MethodPost, base+"/definitions", "accessReviews.definitions.create", authenticated, s.createReview)
	s.handle(http.MethodGet, base+"/definitions/{id}", "accessReviews.definitions.get", authenticated, s.getReview)
	s.handle(http.MethodDelete, base+"/definitions/{id}", "accessReviews.definitions.delete", authenticated, s.deleteReview)
	s.handle(http.MethodGet, base+"/definitions/{id}/instances", "accessReviews.instances.list", authenticated, s.listReviewInstances)
	s.handle(http.MethodGet, base+"/instances/{id}", "accessReviews.instances.get", authenticated, s.getReviewInstance)
	s.handle(http.MethodPost, base+"/instances/{id}/stop", "accessReviews.instances.stop", authenticated, s.manageReviewInstance((*pim.Reviews).Stop))
	s.handle(http.MethodPost, base+"/instances/{id}/applyDecisions", "accessReviews.instances.applyDecisions", authenticated, s.manageReviewInstance((*pim.Reviews).Apply))
	s.handle(http.MethodGet, base+"/instances/{id}/decisions", "accessReviews.decisions.list", authenticated, s.listReviewDecisions)
	s.handle(http.MethodGet, base+"/decisions/me", "accessReviews.decisions.me", authenticated, s.myReviewDecisions)
	s.handle(http.MethodPost, base+"/decisions/{id}", "accessReviews.decisions.record", authenticated, s.recordReviewDecision)
}

// RemovalGuard is the rule the admin API applies inside a delete's
// transaction, after the delete (guardOwners: an enabled Owner remains at
// /). Access reviews apply their denials under it — through the API, and
// in the node's sweep, which is handed this same function.
func RemovalGuard(ctx context.Context, tx store.Reader, kind string) error {
	return guardOwners(ctx, tx, kind)
}

func (s *Server) reviews() *pim.Reviews { return pim.NewReviews(s.pimService(), RemovalGuard) }

// reviewScope is where the rights to manage a definition are checked.
func reviewScope(d *pim.ReviewDefinition) string {
	return pimScope(d.Scope.RoleKind, d.Scope.ResourceScope)
}

// visible: the caller may read role assignments at the definition's
// scope, or is one of its reviewers.
func (s *Server) reviewVisible(r *http.Request, c *call, rv *pim.Reviews, d *pim.ReviewDefinition) bool {
	return s.may(r, c, pimRead, reviewScope(d)) || rv.IsReviewer(c.principal, d)
}

// shown is a definition as the caller may see it: its webhook URLs only
// to those who may read role settings at its scope (as a role's notify
// is shown), not to reviewers, since a URL's path or query may carry the
// receiver's token.
func (s *Server) shown(r *http.Request, c *call, d pim.ReviewDefinition) pim.ReviewDefinition {
	if len(d.Notify) > 0 && !s.may(r, c, pimRead, reviewScope(&d)) {
		d.Notify = nil
	}
	return d
}

// identityOf names a principal as reviews record it.
func (s *Server) identityOf(id string) pim.Identity {
	dir := s.opts.Live.Current().Directory()
	out := pim.Identity{ID: id, Type: dir.PrincipalKind(id)}
	switch out.Type {
	case directory.KindUser:
		if u, ok := dir.User(id); ok {
			out.DisplayName = u.DisplayName
		}
	case directory.KindServicePrincipal:
		if sp, ok := dir.ServicePrincipal(id); ok {
			out.DisplayName = sp.DisplayName
		}
	}
	return out
}

// createReview: POST /accessReviews/definitions with a definition.
func (s *Server) createReview(w http.ResponseWriter, r *http.Request, c *call) error {
	var d pim.ReviewDefinition
	if err := decodeJSON(r, &d); err != nil {
		return err
	}
	for _, f := range []struct {
		set  bool
		name string
	}{{d.ID != "", "id"}, {d.Status != "", "status"}, {d.CreatedBy != (pim.Identity{}), "createdBy"}, {!d.CreatedDateTime.IsZero(), "createdDateTime"}, {d.Pruned != nil, "pruned"}} {
		if f.set {
			return invalid(strictjson.Errorf(f.name, "is the service's to set"))
		}
	}
	if err := d.Validate(); err != nil {
		return pimProblem(err)
	}
	if err := s.require(r.Context(), s.opts.Live.Current(), c, pimWrite, reviewScope(&d)); err != nil {
		return err
	}
	out, err := s.reviews().Create(r.Context(), s.identityOf(c.principal), d)
	if err != nil {
		return pimProblem(err)
	}
	c.recorded = true // the transaction carried its audit record
	w.Header().Set("Location", v1+"/accessReviews/definitions/"+out.ID)
	return writeJSON(w, http.StatusCreated, out)
}

// listReviews: GET /accessReviews/definitions — those the caller
// manages or reviews.
func (s *Server) listReviews(w http.ResponseWriter, r *http.Request, c *call) error {
	all, err := pim.ListReviews(r.Context(), s.opts.Store, time.Now())
	if err != nil {
		return err
	}
	rv := s.reviews()
	out := []pim.ReviewDefinition{}
	for i := range all {
		if s.reviewVisible(r, c, rv, &all[i]) {
			out = append(out, s.shown(r, c, all[i]))
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

// visibleReview reads a definition the caller may see (404 otherwise,
// so that others learn nothing of it).
func (s *Server) visibleReview(r *http.Request, c *call, rv *pim.Reviews, id string) (*pim.ReviewDefinition, error) {
	d, err := pim.GetReview(r.Context(), s.opts.Store, id, time.Now())
	if err != nil {
		return nil, pimProblem(err)
	}
	if !s.reviewVisible(r, c, rv, &d) {
		return nil, pimProblem(pim.ErrReviewNotFound)
	}
	return &d, nil
}

func (s *Server) getReview(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.visibleReview(r, c, s.reviews(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.shown(r, c, *d))
}

// deleteReview: DELETE /accessReviews/definitions/{id}, with its
// instances and items.
func (s *Server) deleteReview(w http.ResponseWriter, r *http.Request, c *call) error {
	rv := s.reviews()
	d, err := s.visibleReview(r, c, rv, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.require(r.Context(), s.opts.Live.Current(), c, pimWrite, reviewScope(d)); err != nil {
		return err
	}
	if err := rv.Delete(r.Context(), c.principal, d.ID); err != nil {
		return pimProblem(err)
	}
	c.recorded = true
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Paging of instances and decision items: $top (at most maxReviewPage)
// and $skiptoken, the id of the last one of the previous page.
const (
	defaultReviewPage = 100
	maxReviewPage     = 500
)

func reviewPaging(qs url.Values) (top int, after string, err error) {
	top = defaultReviewPage
	if v := qs.Get("$top"); v != "" {
		if top, err = strconv.Atoi(v); err != nil || top < 1 || top > maxReviewPage {
			return 0, "", &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be an integer between 1 and " + strconv.Itoa(maxReviewPage), Target: "$top"}
		}
	}
	after = qs.Get("$skiptoken")
	if len(after) > 256 {
		return 0, "", &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "not a valid paging token", Target: "$skiptoken"}
	}
	return top, after, nil
}

// writePage writes {"value": [...]} with the link to the next page when there
// is one.
func writePage[T any](w http.ResponseWriter, r *http.Request, items []T, next string) error {
	if items == nil {
		items = []T{}
	}
	body := map[string]any{"value": items}
	if next != "" {
		qs := r.URL.Query()
		qs.Set("$skiptoken", next)
		body["@odata.nextLink"] = r.URL.Path + "?" + qs.Encode()
	}
	return writeJSON(w, http.StatusOK, body)
}

// listReviewInstances: GET /accessReviews/definitions/{id}/instances,
// oldest first.
func (s *Server) listReviewInstances(w http.ResponseWriter, r *http.Request, c *call) error {
	top, after, err := reviewPaging(r.URL.Query())
	if err != nil {
		return err
	}
	d, err := s.visibleReview(r, c, s.reviews(), r.PathValue("id"))
	if err != nil {
		return err
	}
	all, err := pim.ReviewInstances(r.Context(), s.opts.Store, d.ID)
	if err != nil {
		return err
	}
	var out []pim.ReviewInstance
	next := ""
	for _, inst := range all {
		if inst.ID <= after {
			continue
		}
		if len(out) == top {
			next = out[len(out)-1].ID
			break
		}
		out = append(out, inst)
	}
	return writePage(w, r, out, next)
}

// reviewInstance reads an instance and its definition, visible to the
// caller.
func (s *Server) reviewInstance(r *http.Request, c *call, rv *pim.Reviews) (*pim.ReviewInstance, *pim.ReviewDefinition, error) {
	inst, err := pim.GetReviewInstance(r.Context(), s.opts.Store, r.PathValue("id"))
	if err != nil {
		return nil, nil, pimProblem(err)
	}
	d, err := s.visibleReview(r, c, rv, inst.DefinitionID)
	if err != nil {
		return nil, nil, err
	}
	return &inst, d, nil
}

func (s *Server) getReviewInstance(w http.ResponseWriter, r *http.Request, c *call) error {
	inst, _, err := s.reviewInstance(r, c, s.reviews())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, inst)
}

// manageReviewInstance is an administrator's step on an instance — stop
// (POST .../stop: it ends now) or apply (POST .../applyDecisions: a
// completed instance's denials carried out, one transaction each) — for
// whoever may write role assignments at the definition's scope; each
// step's transactions carry their audit records.
func (s *Server) manageReviewInstance(step func(rv *pim.Reviews, ctx context.Context, actor pim.Identity, instanceID string) (pim.ReviewInstance, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		rv := s.reviews()
		inst, d, err := s.reviewInstance(r, c, rv)
		if err != nil {
			return err
		}
		if err := s.require(r.Context(), s.opts.Live.Current(), c, pimWrite, reviewScope(d)); err != nil {
			return err
		}
		out, err := step(rv, r.Context(), s.identityOf(c.principal), inst.ID)
		if err != nil {
			return pimProblem(err)
		}
		c.recorded = true
		return writeJSON(w, http.StatusOK, out)
	}
}

// decisionFilter reads ?decision=.
func decisionFilter(qs url.Values) (string, error) {
	v := qs.Get("decision")
	switch v {
	case "", pim.DecisionNotReviewed, pim.DecisionApprove, pim.DecisionDeny, pim.DecisionDontKnow:
		return v, nil
	}
	return "", &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be NotReviewed, Approve, Deny or DontKnow", Target: "decision"}
}

// decisionQuery reads the paging and the decision filter of a listing of
// decision items.
func decisionQuery(qs url.Values) (top int, after, decision string, err error) {
	if top, after, err = reviewPaging(qs); err != nil {
		return 0, "", "", err
	}
	decision, err = decisionFilter(qs)
	return top, after, decision, err
}

// listReviewDecisions: GET /accessReviews/instances/{id}/decisions
// [?filter=mine&decision=]. An administrator of the scope sees every
// item, anyone else (and ?filter=mine) the items they may decide.
func (s *Server) listReviewDecisions(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	top, after, decision, err := decisionQuery(qs)
	if err != nil {
		return err
	}
	mine := false
	switch qs.Get("filter") {
	case "":
	case "mine":
		mine = true
	default:
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: `must be "mine"`, Target: "filter"}
	}
	rv := s.reviews()
	inst, err := pim.GetReviewInstance(r.Context(), s.opts.Store, r.PathValue("id"))
	if err != nil {
		return pimProblem(err)
	}
	d, err := pim.GetReview(r.Context(), s.opts.Store, inst.DefinitionID, time.Now())
	if err != nil {
		return pimProblem(err)
	}
	all := !mine && s.may(r, c, pimRead, reviewScope(&d))
	items, more, err := pim.ReviewItems(r.Context(), s.opts.Store, inst.ID, after, top, func(it *pim.ReviewItem) bool {
		return (decision == "" || it.Decision == decision) && (all || rv.CanDecide(c.principal, &d, it))
	})
	if err != nil {
		return err
	}
	next := ""
	if more {
		next = items[len(items)-1].ID
	}
	return writePage(w, r, items, next)
}

// myReviewDecisions: GET /accessReviews/decisions/me[?instanceId=&decision=]
// — the items the caller may decide in every instance in progress.
func (s *Server) myReviewDecisions(w http.ResponseWriter, r *http.Request, c *call) error {
	qs := r.URL.Query()
	top, after, decision, err := decisionQuery(qs)
	if err != nil {
		return err
	}
	only := qs.Get("instanceId")
	rv := s.reviews()
	defs, err := pim.ListReviews(r.Context(), s.opts.Store, time.Now())
	if err != nil {
		return err
	}
	slices.SortFunc(defs, func(a, b pim.ReviewDefinition) int { return strings.Compare(a.ID, b.ID) })
	var out []pim.ReviewItem
	next := ""
	for i := range defs {
		d := &defs[i]
		if d.Status != pim.ReviewInProgress || !d.SelfReview && !rv.IsReviewer(c.principal, d) {
			continue
		}
		insts, err := pim.ReviewInstances(r.Context(), s.opts.Store, d.ID)
		if err != nil {
			return err
		}
		for _, inst := range insts {
			if inst.Status != pim.ReviewInProgress || only != "" && inst.ID != only || after >= inst.ID+"/" {
				continue // items of inst have ids inst.ID + "." + ..., all before inst.ID + "/"
			}
			from := ""
			if strings.HasPrefix(after, inst.ID+".") {
				from = after
			}
			items, more, err := pim.ReviewItems(r.Context(), s.opts.Store, inst.ID, from, top-len(out), func(it *pim.ReviewItem) bool {
				return (decision == "" || it.Decision == decision) && rv.CanDecide(c.principal, d, it)
			})
			if err != nil {
				return err
			}
			out = append(out, items...)
			if more || len(out) == top {
				next = out[len(out)-1].ID
				return writePage(w, r, out, next)
			}
		}
	}
	return writePage(w, r, out, next)
}

// recordReviewDecision: POST /accessReviews/decisions/{id} with
// {"decision": "Approve" | "Deny" | "DontKnow", "justification": "..."}.
func (s *Server) recordReviewDecision(w http.ResponseWriter, r *http.Request, c *call) error {
	var body struct {
		Decision      string `json:"decision"`
		Justification string `json:"justification"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	out, err := s.reviews().RecordDecision(r.Context(), s.identityOf(c.principal), r.PathValue("id"), body.Decision, body.Justification)
	if err != nil {
		return pimProblem(err)
	}
	c.recorded = true
	return writeJSON(w, http.StatusOK, out)
}
