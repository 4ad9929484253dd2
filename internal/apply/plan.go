package apply

import (
	"context"
	"fmt"
	"strings"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// Options tune a plan and an apply.
type Options struct {
	// Prune deletes objects that an earlier apply created (ManagedBy
	// "apply") and the manifest no longer lists. Objects made by hand are
	// never deleted.
	Prune bool
	// DryRun makes Apply compute the plan without writing.
	DryRun bool
	// Sealer seals identity providers' client secrets (the keyring). A
	// manifest that gives a client secret needs one.
	Sealer directory.Sealer
}

// Action is what a change does to one object.
type Action string

// The actions of a plan.
const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

// Change is one object a plan creates, updates or deletes.
type Change struct {
	Action Action `json:"action"`
	// Kind is the store kind: "user", "group", "application",
	// "servicePrincipal", "namedLocation", "directoryRoleAssignment" or
	// "roleAssignment".
	Kind string `json:"kind"`
	// ID is the object's id; for a create, the id the apply gives it.
	ID string `json:"id"`
	// Name is how the plan shows the object: a user's userPrincipalName,
	// another object's displayName, or for an assignment its role,
	// principal and scope.
	Name string `json:"name"`
	// Fields lists, for an update, the top-level properties that change,
	// sorted.
	Fields []string `json:"fields,omitempty"`
}

// Plan is the set of changes that makes the store match a manifest.
type Plan struct {
	// Changes lists creates and updates in the order of the kinds (users,
	// applications, service principals, groups, named locations, directory
	// role assignments, role assignments) and of the manifest, then
	// deletes, assignments first.
	Changes []Change

	writes []write // in the order Apply performs them
	// disabled and removed are the users and service principals the plan
	// disables or deletes, whose sessions Apply ends after the commit.
	disabled, removed []string
	// secrets are the identity providers' client secrets Apply seals and
	// stores after the commit; removedProviders the providers whose
	// secrets it deletes.
	secrets          []pendingSecret
	removedProviders []string
}

// write is one store operation of a plan.
type write struct {
	action     Action
	obj        store.Object // Kind and ID only for a delete
	ifRevision int64        // for an update
	secretOnly bool         // an update of an identity provider's client secret alone: no object write
}

// Counts returns how many objects the plan creates, updates and deletes.
func (p *Plan) Counts() (create, update, del int) {
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			create++
		case Update:
			update++
		case Delete:
			del++
		}
	}
	return create, update, del
}

// Empty reports whether the plan changes nothing.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// String prints the plan as terraform does:
//
//   - create user alice@contoso.com
//     ~ update group "Platform Engineers" (description, members)
//
//   - delete namedLocation "Old office"
//
//     Plan: 1 to create, 1 to update, 1 to delete.
//
// or "No changes." when there is nothing to do.
func (p *Plan) String() string {
	if p.Empty() {
		return "No changes."
	}
	var b strings.Builder
	for _, c := range p.Changes {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	create, update, del := p.Counts()
	fmt.Fprintf(&b, "\nPlan: %d to create, %d to update, %d to delete.", create, update, del)
	return b.String()
}

// String prints one line of a plan.
func (c Change) String() string {
	sym := map[Action]string{Create: "+", Update: "~", Delete: "-"}[c.Action]
	name := c.Name
	switch c.Kind {
	case directory.KindGroup, directory.KindApplication, directory.KindServicePrincipal, directory.KindNamedLocation, directory.KindIdentityProvider,
		access.Kind, rbac.DefinitionKind, rbac.DenyKind:
		name = fmt.Sprintf("%q", c.Name)
	}
	s := fmt.Sprintf("%s %s %s %s", sym, c.Action, c.Kind, name)
	if len(c.Fields) > 0 {
		s += " (" + strings.Join(c.Fields, ", ") + ")"
	}
	return s
}

// Diff computes the plan that makes what r holds match m: objects to
// create, to update (only when a property really differs; server-set
// properties such as createdDateTime do not count) and, with opts.Prune,
// apply-managed objects to delete. It validates every entry with its
// kind's rules, resolves every reference (members, assignment principals)
// against the manifest first and then the store, and checks the resulting
// directory for duplicate keys and group nesting cycles. Problems come
// back as *Error values joined with errors.Join, each naming the file and
// JSON path; store failures come back wrapped.
//
// Pass a transaction (as Apply does) or a store.View reader so that the
// plan reflects one consistent state.
//
// Without the store's records to compare with, Diff counts every client
// secret a manifest gives as a change; Apply compares.
func Diff(ctx context.Context, r store.Reader, m *Manifest, opts Options) (*Plan, error) {
	return diff(ctx, r, m, opts, nil)
}

// diff is Diff reading current client secrets from records when set.
func diff(ctx context.Context, r store.Reader, m *Manifest, opts Options, records store.Store) (*Plan, error) {
	if m == nil {
		m = &Manifest{}
	}
	if errs := duplicates(m); len(errs) > 0 {
		var l errList
		for _, err := range errs {
			l.add(err)
		}
		return nil, l.err()
	}
	p, err := newPlanner(ctx, r, m, opts)
	if err != nil {
		return nil, err
	}
	p.records = records
	return p.run()
}

// Apply makes the store match m. It computes the plan inside one store
// transaction and writes it there, so a problem anywhere, or a failure
// half way, writes nothing. It returns the plan and the store revision
// that now reflects it (the unchanged current revision when the plan is
// empty). After the commit it seals and stores the identity providers'
// client secrets the plan sets (records are outside the transaction) and
// removes those of deleted providers, revokes the API tokens of the users
// and service principals the plan disabled or deleted, and removes the
// credentials of those it deleted; should that fail, Apply returns the
// plan and revision with the error. With opts.DryRun it computes the plan
// on a consistent view and writes nothing.
func Apply(ctx context.Context, st store.Store, m *Manifest, opts Options) (*Plan, int64, error) {
	var plan *Plan
	if opts.DryRun {
		var rev int64
		err := st.View(ctx, func(ctx context.Context, r store.Reader, revision int64) error {
			var err error
			plan, err = diff(ctx, r, m, opts, st)
			rev = revision
			return err
		})
		if err != nil {
			return nil, 0, err
		}
		return plan, rev, nil
	}
	rev, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		if plan, err = diff(ctx, tx, m, opts, st); err != nil {
			return err
		}
		return plan.write(ctx, tx)
	})
	if err != nil {
		return nil, 0, err
	}
	if err := plan.storeSecrets(ctx, st, opts.Sealer); err != nil {
		return plan, rev, fmt.Errorf("apply: revision %d is committed, but %w", rev, err)
	}
	if err := plan.signOut(ctx, st); err != nil {
		return plan, rev, fmt.Errorf("apply: revision %d is committed, but ending the sessions of disabled or deleted principals failed: %w", rev, err)
	}
	return plan, rev, nil
}

// write performs the plan's writes in tx.
func (p *Plan) write(ctx context.Context, tx store.Tx) error {
	for _, w := range p.writes {
		var err error
		switch w.action {
		case Create:
			err = tx.Create(ctx, w.obj)
		case Update:
			if w.secretOnly {
				continue
			}
			err = tx.Update(ctx, w.obj, w.ifRevision)
		case Delete:
			err = tx.Delete(ctx, w.obj.Kind, w.obj.ID)
		}
		if err != nil {
			return fmt.Errorf("apply: %s %s %s: %w", w.action, w.obj.Kind, w.obj.ID, err)
		}
	}
	return nil
}
