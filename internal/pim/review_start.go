package pim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// signInAction is the audit action of the sign-in log's events
// (signin.AuditAction; pim does not import signin): their actor is the
// user or service principal, their result "success" for a sign-in that
// got in.
const signInAction = "signIn"

// errTooManyItems: an instance over more than maxReviewItems items.
var errTooManyItems = fmt.Errorf("more than %d decision items; narrow the review's scope or roles", maxReviewItems)

// start starts a NotStarted instance whose start has come: it reads the
// assignments in force now under the definition's scope (one consistent
// view of the store), works out the recommendations, and writes the items
// with the instance, InProgress, in one transaction (accessReview.start).
func (rv *Reviews) start(ctx context.Context, d *ReviewDefinition, id string) (int, error) {
	now := rv.svc.now()
	items, revision, dir, err := rv.snapshot(ctx, d, id, now)
	if errors.Is(err, errTooManyItems) {
		return 0, rv.update(ctx, ReviewActor, "accessReview.stop", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
			inst, rev, err := getInstance(ctx, tx, id)
			if err != nil || inst.Status != ReviewNotStarted {
				return nil, ignoreGone(err)
			}
			inst.Status, inst.StoppedBy, inst.StoppedDateTime, inst.StoppedReason = ReviewStopped, &Identity{ID: ReviewActor}, &now, errTooManyItems.Error()
			if err := writeInstance(ctx, tx, inst, rev); err != nil {
				return nil, err
			}
			return &reviewRecord{target: "/accessReviews/instances/" + id, failed: true, details: map[string]any{"definitionId": d.ID,
				"status": inst.Status, "reason": inst.StoppedReason}}, nil
		})
	}
	if err != nil {
		return 0, err
	}
	if d.Settings.RecommendationsEnabled {
		if err := recommend(ctx, rv.svc.st, items, dir, now); err != nil {
			return 0, err
		}
	}
	n := 0
	err = rv.update(ctx, ReviewActor, "accessReview.start", func(ctx context.Context, tx store.Tx) (*reviewRecord, error) {
		inst, rev, err := getInstance(ctx, tx, id)
		if err != nil {
			return nil, ignoreGone(err)
		}
		if inst.Status != ReviewNotStarted {
			return nil, nil // another node started it
		}
		for i := range items {
			if err := writeItem(ctx, tx, &items[i], 0); err != nil {
				return nil, fmt.Errorf("item %s: %w", items[i].ID, err)
			}
		}
		inst.Status, inst.SnapshotRevision = ReviewInProgress, revision
		inst.Summary = &ReviewStats{Items: len(items), NotReviewed: len(items)}
		if err := writeInstance(ctx, tx, inst, rev); err != nil {
			return nil, err
		}
		n = 1
		return &reviewRecord{target: "/accessReviews/instances/" + id, details: map[string]any{"definitionId": d.ID, "status": inst.Status,
			"items": len(items), "snapshotRevision": revision, "endDateTime": inst.EndDateTime}}, nil
	})
	return n, err
}

// grant is one role assignment or eligibility in force at a start.
type grant struct {
	kind, id  string
	revision  int64
	state     string
	principal string
	role      string
	scope     string
	schedule.Schedule
}

// snapshot lists the items of instance id starting at at: one per
// principal and role assignment (or eligibility, with includeEligible) in
// force at at under the definition's scope, read in one view of the
// store, whose revision it returns with the directory of that view.
func (rv *Reviews) snapshot(ctx context.Context, d *ReviewDefinition, id string, at time.Time) ([]ReviewItem, int64, *directory.Snapshot, error) {
	var items []ReviewItem
	var rev int64
	var dir *directory.Snapshot
	err := rv.svc.st.View(ctx, func(ctx context.Context, r store.Reader, revision int64) error {
		var err error
		rev = revision
		if dir, err = directory.Build(ctx, r, revision); err != nil {
			return err
		}
		b := itemBuilder{def: d, instanceID: id, dir: dir, roles: map[string]bool{}, names: map[string]string{}}
		for _, ref := range d.Scope.RoleDefinitionIDs {
			b.roles[roleGUID(ref)] = true
		}
		if d.Scope.RoleKind == RoleKindRBAC {
			if err := b.customRoleNames(ctx, r); err != nil {
				return err
			}
		}
		grants, err := b.grants(ctx, r, at)
		if err != nil {
			return err
		}
		for _, g := range grants {
			if err := b.add(g); err != nil {
				return err
			}
		}
		items = b.items
		return nil
	})
	return items, rev, dir, err
}

// itemBuilder turns grants into decision items.
type itemBuilder struct {
	def        *ReviewDefinition
	instanceID string
	dir        *directory.Snapshot
	roles      map[string]bool   // GUIDs the definition is limited to (none: all)
	names      map[string]string // custom RBAC role GUID -> name
	items      []ReviewItem
}

func (b *itemBuilder) customRoleNames(ctx context.Context, r store.Reader) error {
	return store.Each(ctx, r, rbac.DefinitionKind, func(o store.Object) error {
		var def rbac.RoleDefinition
		if err := json.Unmarshal(o.Body, &def); err != nil {
			return fmt.Errorf("role definition %s: %w", o.ID, err)
		}
		b.names[roleGUID(def.Name)] = def.RoleName
		return nil
	})
}

// in reports whether a grant of role at scope is under review.
func (b *itemBuilder) in(role, scope string) bool {
	if scope == "" {
		scope = "/"
	}
	return rbac.ScopeContains(b.def.Scope.ResourceScope, scope) && (len(b.roles) == 0 || b.roles[roleGUID(role)])
}

// grants reads the assignments (and eligibilities) under review in force
// at at.
func (b *itemBuilder) grants(ctx context.Context, r store.Reader, at time.Time) ([]grant, error) {
	var out []grant
	kind := b.def.Scope.RoleKind
	var err error
	if kind == RoleKindDirectory {
		err = store.Each(ctx, r, directory.RoleAssignments.Name(), func(o store.Object) error {
			a, err := directory.RoleAssignments.FromObject(o)
			if err != nil {
				return err
			}
			if a.InForce(at) && b.in(a.RoleDefinitionID, a.DirectoryScopeID) {
				scope := a.DirectoryScopeID
				if scope == "" {
					scope = "/"
				}
				out = append(out, grant{kind: o.Kind, id: o.ID, revision: o.Revision, state: StateActive, principal: a.PrincipalID,
					role: a.RoleDefinitionID, scope: scope, Schedule: a.Schedule})
			}
			return nil
		})
	} else {
		err = store.Each(ctx, r, rbac.Kind, func(o store.Object) error {
			var a rbac.Assignment
			if err := json.Unmarshal(o.Body, &a); err != nil {
				return fmt.Errorf("role assignment %s: %w", o.ID, err)
			}
			if a.InForce(at) && b.in(a.RoleDefinitionID, a.Scope) {
				out = append(out, grant{kind: o.Kind, id: o.ID, revision: o.Revision, state: StateActive, principal: a.PrincipalID,
					role: a.RoleDefinitionID, scope: a.Scope, Schedule: a.Schedule})
			}
			return nil
		})
	}
	if err != nil || !b.def.Scope.IncludeEligible {
		return out, err
	}
	err = store.Each(ctx, r, EligibilityKind, func(o store.Object) error {
		var e Eligibility
		if err := json.Unmarshal(o.Body, &e); err != nil {
			return fmt.Errorf("eligibility %s: %w", o.ID, err)
		}
		if e.RoleKind == kind && e.InForce(at) && b.in(e.RoleDefinitionID, e.Scope) {
			out = append(out, grant{kind: o.Kind, id: o.ID, revision: o.Revision, state: StateEligible, principal: e.PrincipalID,
				role: e.RoleDefinitionID, scope: e.Scope, Schedule: schedule.Schedule{EndDateTime: e.EndDateTime}})
		}
		return nil
	})
	return out, err
}

// wants reports whether the definition reviews principals of type t
// (principals that no longer exist only when it reviews every type).
func (b *itemBuilder) wants(t string) bool {
	types := b.def.Scope.PrincipalTypes
	return len(types) == 0 || slices.Contains(types, t)
}

// add makes the items of one grant: one for its principal, and — for an
// RBAC role held by a group — one for each user and service principal in
// the group, directly or through nesting. A directory role held by a
// (role-assignable) group is reviewed as the group's, as Entra does.
func (b *itemBuilder) add(g grant) error {
	p := b.identity(g.principal)
	if b.wants(p.Type) {
		if err := b.item(g, p, nil); err != nil {
			return err
		}
	}
	if p.Type != PrincipalGroup || b.def.Scope.RoleKind != RoleKindRBAC {
		return nil
	}
	for _, m := range b.dir.TransitiveMembers(g.principal) {
		mp := b.identity(m)
		if (mp.Type == PrincipalUser || mp.Type == PrincipalServicePrincipal) && b.wants(mp.Type) {
			if err := b.item(g, mp, &p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *itemBuilder) item(g grant, p Identity, via *Identity) error {
	if len(b.items) >= maxReviewItems {
		return errTooManyItems
	}
	sum := sha256.Sum256([]byte(g.kind + "\x00" + g.id + "\x00" + p.ID))
	it := ReviewItem{ID: b.instanceID + "." + hex.EncodeToString(sum[:8]), DefinitionID: b.def.ID, InstanceID: b.instanceID,
		Principal: p, Role: b.role(g.role), RoleKind: b.def.Scope.RoleKind, Scope: g.scope, Via: ViaDirect,
		AssignmentState: g.state, AssignmentID: g.id, AssignmentRevision: g.revision, AssignmentType: g.AssignmentType,
		TimeBound: g.EndDateTime != nil, EndDateTime: g.EndDateTime, Decision: DecisionNotReviewed, ApplyResult: ApplyNotApplied}
	if via != nil {
		v := *via
		it.Via, it.ViaGroup = ViaGroup, &v
	}
	b.items = append(b.items, it)
	return nil
}

// identity names a principal by the directory of the start.
func (b *itemBuilder) identity(id string) Identity {
	switch b.dir.PrincipalKind(id) {
	case directory.KindUser:
		u, _ := b.dir.User(id)
		name := u.DisplayName
		if name == "" {
			name = u.UserPrincipalName
		}
		return Identity{ID: id, DisplayName: name, Type: PrincipalUser}
	case directory.KindGroup:
		g, _ := b.dir.Group(id)
		return Identity{ID: id, DisplayName: g.DisplayName, Type: PrincipalGroup}
	case directory.KindServicePrincipal:
		sp, _ := b.dir.ServicePrincipal(id)
		return Identity{ID: id, DisplayName: sp.DisplayName, Type: PrincipalServicePrincipal}
	}
	return Identity{ID: id, Type: PrincipalUnknown}
}

// role names a role: a built-in or custom RBAC role, or a directory role.
func (b *itemBuilder) role(id string) Identity {
	if b.def.Scope.RoleKind == RoleKindDirectory {
		if r, ok := directory.RoleByID(id); ok {
			return Identity{ID: id, DisplayName: r.DisplayName}
		}
		return Identity{ID: id}
	}
	if r, ok := rbac.LookupRole(id); ok {
		return Identity{ID: id, DisplayName: r.RoleName}
	}
	return Identity{ID: id, DisplayName: b.names[roleGUID(id)]}
}

// recommend sets each item's recommendation from the sign-in log (the
// audit log's signIn events): Approve for a user or service principal
// that signed in successfully within RecommendationLookBack before at,
// Deny for one that did not — when the log reaches back that far and the
// principal existed then; otherwise, and for groups and principals that
// no longer exist, NotAvailable.
func recommend(ctx context.Context, st store.Store, items []ReviewItem, dir *directory.Snapshot, at time.Time) error {
	cutoff := at.Add(-RecommendationLookBack)
	covered, err := auditReachesBack(ctx, st, cutoff)
	if err != nil {
		return err
	}
	type verdict struct {
		rec  string
		last *time.Time
	}
	memo := map[string]verdict{}
	for i := range items {
		it := &items[i]
		p := it.Principal
		if p.Type != PrincipalUser && p.Type != PrincipalServicePrincipal {
			it.Recommendation = RecommendNotAvailable
			continue
		}
		v, ok := memo[p.ID]
		if !ok {
			evs, err := st.ListAudit(ctx, store.AuditQuery{Actor: p.ID, Action: signInAction, Result: "success", Until: at, Limit: 1})
			if err != nil {
				return fmt.Errorf("last sign-in of %s: %w", p.ID, err)
			}
			switch {
			case len(evs) == 1:
				t := evs[0].Time.UTC()
				v = verdict{rec: RecommendDeny, last: &t}
				if !t.Before(cutoff) {
					v.rec = RecommendApprove
				}
			case covered && !createdAfter(dir, p, cutoff):
				v = verdict{rec: RecommendDeny}
			default:
				v = verdict{rec: RecommendNotAvailable}
			}
			memo[p.ID] = v
		}
		it.Recommendation, it.LastSignInDateTime = v.rec, v.last
	}
	return nil
}

// auditReachesBack reports whether the audit log still holds events from
// before cutoff: retention deletes the oldest first, so then it holds
// every sign-in since.
func auditReachesBack(ctx context.Context, st store.Store, cutoff time.Time) (bool, error) {
	head, err := st.AuditHead(ctx)
	if err != nil {
		return false, fmt.Errorf("audit log head: %w", err)
	}
	oldest, err := st.AuditLeaves(ctx, head.Pruned, 1)
	if err != nil {
		return false, fmt.Errorf("oldest audit event: %w", err)
	}
	return len(oldest) == 1 && !oldest[0].Time.After(cutoff), nil
}

// createdAfter reports whether the principal was created after t (so its
// silence since t proves nothing).
func createdAfter(dir *directory.Snapshot, p Identity, t time.Time) bool {
	var created *time.Time
	switch p.Type {
	case PrincipalUser:
		if u, ok := dir.User(p.ID); ok {
			created = u.CreatedDateTime
		}
	case PrincipalServicePrincipal:
		if sp, ok := dir.ServicePrincipal(p.ID); ok {
			created = sp.CreatedDateTime
		}
	}
	return created != nil && created.After(t)
}
