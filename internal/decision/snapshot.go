package decision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/jit"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// Snapshot is one consistent, read-only view of everything decisions need,
// as of one store revision. It is never modified after Build returns.
type Snapshot struct {
	revision  int64
	builtAt   time.Time
	directory *directory.Snapshot
	// access is the compiled conditional access policy set; accessErr
	// says why it could not be compiled, in which case conditional access
	// decisions fail closed.
	access    *access.Engine
	accessErr error
	// rbac is the compiled role-based access engine over every stored
	// role definition, role assignment and deny assignment; rbacErr says
	// why it could not be compiled, in which case authorisation fails
	// closed.
	rbac    *rbac.Engine
	rbacErr error
	// jit is the compiled just-in-time network access policies and the
	// requests open when the snapshot was built.
	jit *jit.Gate
}

// AdminLevel is what a principal may do on Verity's admin API.
type AdminLevel int

const (
	// NoAccess: the principal may not use the admin API.
	NoAccess AdminLevel = iota
	// ReadAccess: the principal may read (role Reader).
	ReadAccess
	// WriteAccess: the principal may read and change anything (role Owner).
	WriteAccess
)

// Build reads the store in one consistent view and compiles a Snapshot.
func Build(ctx context.Context, st store.Store) (*Snapshot, error) {
	var snap *Snapshot
	err := st.View(ctx, func(ctx context.Context, r store.Reader, revision int64) error {
		dir, err := directory.Build(ctx, r, revision)
		if err != nil {
			return err
		}
		snap = &Snapshot{revision: revision, builtAt: time.Now(), directory: dir}
		snap.access, snap.accessErr, err = compileAccess(ctx, r, dir)
		if err != nil {
			return err
		}
		snap.rbac, snap.rbacErr, err = compileRBAC(ctx, r, dir)
		if err != nil {
			return err
		}
		snap.jit, err = jit.Load(ctx, r, snap.builtAt)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("build snapshot: %w", err)
	}
	return snap, nil
}

// compileAccess compiles the stored conditional access policies against
// the directory's named locations. A policy set that does not compile (the
// API refuses such writes, so only hand-edited databases get here) does not
// stop the snapshot: directory decisions go on, and conditional access
// fails closed with the reason. Store errors do stop it.
func compileAccess(ctx context.Context, r store.Reader, dir *directory.Snapshot) (*access.Engine, error, error) {
	var policies []*access.Policy
	after := ""
	for {
		page, err := r.List(ctx, access.Kind, store.ListOptions{AfterID: after, Limit: 1000})
		if err != nil {
			return nil, nil, fmt.Errorf("list conditional access policies: %w", err)
		}
		for _, o := range page {
			p, err := access.FromObject(o)
			if err != nil {
				return nil, fmt.Errorf("conditional access policy %s: %w", o.ID, err), nil
			}
			policies = append(policies, p)
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].ID
	}
	eng, err := access.Compile(policies, access.OptionsFor(dir))
	if err != nil {
		return nil, fmt.Errorf("compile conditional access policies: %w", err), nil
	}
	return eng, nil, nil
}

// Access is the compiled conditional access engine, or why there is none
// (decisions must then fail closed).
func (s *Snapshot) Access() (*access.Engine, error) { return s.access, s.accessErr }

// Revision is the store revision the snapshot reflects.
func (s *Snapshot) Revision() int64 { return s.revision }

// BuiltAt is when the snapshot was compiled.
func (s *Snapshot) BuiltAt() time.Time { return s.builtAt }

// NetworkAccess is the just-in-time network access gate: which ports of
// which resources are closed, and open to whom until when.
func (s *Snapshot) NetworkAccess() *jit.Gate { return s.jit }

// Directory is the compiled directory.
func (s *Snapshot) Directory() *directory.Snapshot { return s.directory }

// AdminAccess summarises what a principal may do on the admin API now, for
// display: WriteAccess when it may grant roles at "/" (Owner, User Access
// Administrator), ReadAccess when it may read the tenant's status, else
// NoAccess. Every request is authorised on its own action and scope by
// Authorize; this is not a decision.
func (s *Snapshot) AdminAccess(principalID string) AdminLevel {
	var d rbac.Decision
	now := time.Now()
	if s.Authorize(principalID, ActionGrantRoles, "/", now, &d) == nil && d.Allowed {
		return WriteAccess
	}
	if s.Authorize(principalID, ActionReadStatus, "/", now, &d) == nil && d.Allowed {
		return ReadAccess
	}
	return NoAccess
}

// Actions the admin summary asks about.
const (
	ActionGrantRoles = "Microsoft.Authorization/roleAssignments/write"
	ActionReadStatus = "Verity.System/status/read"
)

// compileRBAC compiles the stored custom role definitions, role
// assignments and deny assignments (the Azure built-in roles are always
// known) with the directory's transitive memberships and the ABAC
// condition language. Like compileAccess, a set that does not compile
// leaves authorisation failing closed with the reason; store errors stop
// the build.
func compileRBAC(ctx context.Context, r store.Reader, dir *directory.Snapshot) (*rbac.Engine, error, error) {
	var defs []rbac.RoleDefinition
	var assignments []rbac.Assignment
	var denies []rbac.DenyAssignment
	for _, kind := range []string{rbac.DefinitionKind, rbac.Kind, rbac.DenyKind} {
		after := ""
		for {
			page, err := r.List(ctx, kind, store.ListOptions{AfterID: after, Limit: 1000})
			if err != nil {
				return nil, nil, fmt.Errorf("list %s: %w", kind, err)
			}
			for _, o := range page {
				var err error
				switch kind {
				case rbac.DefinitionKind:
					var d rbac.RoleDefinition
					err = json.Unmarshal(o.Body, &d)
					defs = append(defs, d)
				case rbac.Kind:
					var a rbac.Assignment
					err = json.Unmarshal(o.Body, &a)
					assignments = append(assignments, a)
				case rbac.DenyKind:
					var d rbac.DenyAssignment
					err = json.Unmarshal(o.Body, &d)
					denies = append(denies, d)
				}
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", kind, o.ID, err), nil
				}
			}
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].ID
		}
	}
	eng, err := rbac.Compile(defs, assignments, denies, rbac.Options{Principals: dir, CompileCondition: rbac.CompileCondition})
	if err != nil {
		return nil, fmt.Errorf("compile role-based access: %w", err), nil
	}
	return eng, nil, nil
}

// ErrNoRBAC means the role assignments could not be compiled; every
// authorisation is refused until they can.
var ErrNoRBAC = errors.New("role-based access is unavailable")

// Authorize decides whether principalID may perform action at scope on
// Verity's own resources at time now, with the RBAC engine: the answer and
// its reasons land in res. Role assignments with a window count only
// inside it (a zero now is the current time). A disabled or deleted
// principal is refused whatever its assignments. The error is non-nil only
// when there is no engine.
func (s *Snapshot) Authorize(principalID, action, scope string, now time.Time, res *rbac.Decision) error {
	if s.rbacErr != nil {
		*res = rbac.Decision{}
		return fmt.Errorf("%w: %v", ErrNoRBAC, s.rbacErr)
	}
	s.rbac.Check(&rbac.Request{PrincipalID: principalID, Action: action, Scope: scope, Now: now}, res)
	if res.Allowed && !s.directory.PrincipalEnabled(principalID) {
		res.Allowed = false
	}
	return nil
}

// RBAC is the compiled role-based access engine, or why there is none.
func (s *Snapshot) RBAC() (*rbac.Engine, error) { return s.rbac, s.rbacErr }
