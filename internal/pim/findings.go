package pim

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// Finding is standing privilege PIM would take away: what, about whom,
// and what to do.
type Finding struct {
	Kind             string `json:"kind"`     // standingPrivilegedAssignment, tooManyOwners, tooManyGlobalAdministrators, eligibleNeverActivated
	Severity         string `json:"severity"` // low, medium, high
	PrincipalID      string `json:"principalId,omitempty"`
	RoleDefinitionID string `json:"roleDefinitionId,omitempty"`
	RoleName         string `json:"roleName,omitempty"`
	Scope            string `json:"scope,omitempty"`
	RoleKind         string `json:"roleKind,omitempty"`
	AssignmentID     string `json:"assignmentId,omitempty"`
	Count            int    `json:"count,omitempty"`
	Summary          string `json:"summary"`
	Recommendation   string `json:"recommendation"`
}

// FindingsOptions are the thresholds of Findings.
type FindingsOptions struct {
	// MaxOwners and MaxGlobalAdministrators: more standing holders of
	// Owner at / or of Global Administrator is a finding (Microsoft
	// recommends fewer than five Global Administrators).
	MaxOwners, MaxGlobalAdministrators int
	// UnusedFor: an eligibility older than this, never activated, is a
	// finding.
	UnusedFor time.Duration
}

// DefaultFindingsOptions: 3 Owners at /, 4 Global Administrators, 90 days.
func DefaultFindingsOptions() FindingsOptions {
	return FindingsOptions{MaxOwners: 3, MaxGlobalAdministrators: 4, UnusedFor: 90 * 24 * time.Hour}
}

// globalAdministrator is the template id of Global Administrator.
const globalAdministrator = "62e90394-69f5-4237-9190-012177145e10"

// privilegedRBAC are the RBAC roles that can grant access or change
// everything: Owner, User Access Administrator, Role Based Access Control
// Administrator, Contributor.
var privilegedRBAC = []string{"Owner", "User Access Administrator", "Role Based Access Control Administrator", "Contributor"}

// Findings lists the standing privilege in st at now: privileged roles
// held without an end and not through PIM (the assignments PIM would make
// eligible), more Owners at / or Global Administrators than opts allow,
// and eligibilities never activated.
func Findings(ctx context.Context, st store.Reader, now time.Time, opts FindingsOptions) ([]Finding, error) {
	var out []Finding
	owners, admins := 0, 0
	privileged := map[string]string{} // role id (lower) → name
	for _, name := range privilegedRBAC {
		if r, ok := rbac.LookupRole(name); ok {
			privileged[strings.ToLower(r.ID)] = r.RoleName
		}
	}
	owner, _ := rbac.LookupRole("Owner")
	err := store.Each(ctx, st, rbac.Kind, func(o store.Object) error {
		var a rbac.Assignment
		if err := json.Unmarshal(o.Body, &a); err != nil {
			return fmt.Errorf("role assignment %s: %w", o.ID, err)
		}
		name, ok := privileged[strings.ToLower(a.RoleDefinitionID)]
		if !ok || a.EndDateTime != nil || (a.StartDateTime != nil && now.Before(*a.StartDateTime)) {
			return nil
		}
		if strings.EqualFold(a.RoleDefinitionID, owner.ID) && a.Scope == "/" {
			owners++
		}
		out = append(out, Finding{Kind: "standingPrivilegedAssignment", Severity: "medium", PrincipalID: a.PrincipalID, RoleDefinitionID: a.RoleDefinitionID,
			RoleName: name, Scope: a.Scope, RoleKind: RoleKindRBAC, AssignmentID: o.ID,
			Summary:        fmt.Sprintf("%s holds %s at %s for good, outside PIM", a.PrincipalID, name, a.Scope),
			Recommendation: "make the principal eligible (AdminAssign) and remove the standing assignment"})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = store.Each(ctx, st, directory.RoleAssignments.Name(), func(o store.Object) error {
		a, err := directory.RoleAssignments.FromObject(o)
		if err != nil {
			return err
		}
		role, ok := directory.RoleByID(a.RoleDefinitionID)
		if !ok || !role.IsPrivileged || a.EndDateTime != nil || (a.StartDateTime != nil && now.Before(*a.StartDateTime)) {
			return nil
		}
		if strings.EqualFold(role.ID, globalAdministrator) {
			admins++
		}
		out = append(out, Finding{Kind: "standingPrivilegedAssignment", Severity: "high", PrincipalID: a.PrincipalID, RoleDefinitionID: role.ID,
			RoleName: role.DisplayName, Scope: a.DirectoryScopeID, RoleKind: RoleKindDirectory, AssignmentID: o.ID,
			Summary:        fmt.Sprintf("%s holds the directory role %s for good, outside PIM", a.PrincipalID, role.DisplayName),
			Recommendation: "make the principal eligible (AdminAssign, roleKind directory) and remove the standing assignment"})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.MaxOwners > 0 && owners > opts.MaxOwners {
		out = append(out, Finding{Kind: "tooManyOwners", Severity: "high", RoleDefinitionID: owner.ID, RoleName: "Owner", Scope: "/", Count: owners,
			Summary:        fmt.Sprintf("%d principals are Owner at / for good (at most %d advised)", owners, opts.MaxOwners),
			Recommendation: "keep two break-glass Owners standing and make the others eligible"})
	}
	if opts.MaxGlobalAdministrators > 0 && admins > opts.MaxGlobalAdministrators {
		out = append(out, Finding{Kind: "tooManyGlobalAdministrators", Severity: "high", RoleDefinitionID: globalAdministrator,
			RoleName: "Global Administrator", Scope: "/", Count: admins,
			Summary:        fmt.Sprintf("%d principals are Global Administrator for good (fewer than 5 advised)", admins),
			Recommendation: "make Global Administrator eligible, with approval, for all but the break-glass accounts"})
	}
	// Eligibilities never activated.
	activated := map[string]bool{}
	if err := store.Each(ctx, st, RequestKind, func(o store.Object) error {
		var r Request
		if err := json.Unmarshal(o.Body, &r); err != nil {
			return fmt.Errorf("request %s: %w", o.ID, err)
		}
		if r.RequestType == SelfActivate && r.Status == StatusProvisioned {
			activated[r.LinkedEligibilityID] = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	err = eachEligibility(ctx, st, func(e *Eligibility) error {
		if opts.UnusedFor > 0 && !activated[e.ID] && now.Sub(e.CreatedDateTime) >= opts.UnusedFor && e.InForce(now) {
			out = append(out, Finding{Kind: "eligibleNeverActivated", Severity: "low", PrincipalID: e.PrincipalID, RoleDefinitionID: e.RoleDefinitionID,
				Scope: e.Scope, RoleKind: e.RoleKind, AssignmentID: e.ID,
				Summary:        fmt.Sprintf("%s has been eligible for %s at %s since %s and never activated it", e.PrincipalID, e.RoleDefinitionID, e.Scope, e.CreatedDateTime.Format("2006-01-02")),
				Recommendation: "remove the eligibility (AdminRemove) if the role is not needed"})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rank := map[string]int{"high": 0, "medium": 1, "low": 2}
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Severity] < rank[out[j].Severity] })
	return out, nil
}
