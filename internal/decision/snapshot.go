package decision

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// Snapshot is one consistent, read-only view of everything decisions need,
// as of one store revision. It is never modified after Build returns.
type Snapshot struct {
	revision  int64
	builtAt   time.Time
	directory *directory.Snapshot
	// adminLevel is the admin API access granted by tenant-wide ("/")
	// role assignments, keyed by the assignee (user, group or service
	// principal).
	adminLevel map[string]AdminLevel
	// access is the compiled conditional access policy set; accessErr
	// says why it could not be compiled, in which case conditional access
	// decisions fail closed.
	access    *access.Engine
	accessErr error
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
		levels, err := loadAdminLevels(ctx, r)
		if err != nil {
			return err
		}
		snap = &Snapshot{revision: revision, builtAt: time.Now(), directory: dir, adminLevel: levels}
		snap.access, snap.accessErr, err = compileAccess(ctx, r, dir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("build snapshot: %w", err)
	}
	return snap, nil
}

func loadAdminLevels(ctx context.Context, r store.Reader) (map[string]AdminLevel, error) {
	levels := map[string]AdminLevel{}
	after := ""
	for {
		page, err := r.List(ctx, rbac.Kind, store.ListOptions{AfterID: after, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("list role assignments: %w", err)
		}
		for _, o := range page {
			var a rbac.Assignment
			if err := json.Unmarshal(o.Body, &a); err != nil {
				return nil, fmt.Errorf("role assignment %s: %w", o.ID, err)
			}
			if a.Scope != "/" {
				continue // only tenant-wide assignments reach the admin API
			}
			// Only Owner and Reader reach the admin API; every other role
			// of the catalogue grants nothing here.
			var level AdminLevel
			switch {
			case rbac.IsOwner(a.RoleDefinitionID):
				level = WriteAccess
			case rbac.IsReader(a.RoleDefinitionID):
				level = ReadAccess
			default:
				continue
			}
			levels[a.PrincipalID] = max(levels[a.PrincipalID], level)
		}
		if len(page) < 1000 {
			return levels, nil
		}
		after = page[len(page)-1].ID
	}
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

// Directory is the compiled directory.
func (s *Snapshot) Directory() *directory.Snapshot { return s.directory }

// AdminAccess decides what a principal may do on the admin API: the
// highest level granted to it or to any group it belongs to, transitively.
// A disabled or deleted principal gets NoAccess whatever its assignments.
func (s *Snapshot) AdminAccess(principalID string) AdminLevel {
	if !s.directory.PrincipalEnabled(principalID) {
		return NoAccess
	}
	level := s.adminLevel[principalID]
	if level == WriteAccess {
		return level
	}
	for _, g := range s.directory.TransitiveMemberOf(principalID) {
		level = max(level, s.adminLevel[g])
	}
	return level
}
