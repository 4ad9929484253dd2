package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/rbac"
)

func newRBACCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rbac",
		Short: "Check Azure-style role-based access offline (az role exports as they are)",
	}
	cmd.AddCommand(newRBACCheckCmd(), newRBACWhoCanCmd(), newRBACPermissionsCmd())
	return cmd
}

// rbacInputs are the files every offline rbac command reads, and the
// time it asks about.
type rbacInputs struct {
	definitions, assignments, denies, directory string
	at                                          string
}

func (in *rbacInputs) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&in.definitions, "definitions", "", "custom role definitions: `az role definition list` output or ARM JSON (the 928 Azure built-ins are always known)")
	cmd.Flags().StringVar(&in.assignments, "assignments", "", "role assignments: `az role assignment list` output, ARM JSON or Verity's export (required)")
	cmd.Flags().StringVar(&in.denies, "deny-assignments", "", "deny assignments (Azure JSON)")
	cmd.Flags().StringVar(&in.directory, "directory", "", `group memberships: {"users":[{"id","memberOf"}],"groups":[{"id","memberOf"}]} or a Graph user list with transitiveMemberOf`)
	cmd.Flags().StringVar(&in.at, "at", "", "the time to answer for (RFC 3339): time-bound assignments count only inside their window (default now)")
}

// now is the time --at names, or the current time.
func (in *rbacInputs) now() (time.Time, error) {
	if in.at == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, in.at)
	if err != nil {
		return time.Time{}, badInput{fmt.Errorf("--at: want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", err)}
	}
	return t, nil
}

// engine compiles the inputs with the real ABAC condition language.
func (in *rbacInputs) engine() (*rbac.Engine, error) {
	if in.assignments == "" {
		return nil, badInput{errors.New("--assignments is required")}
	}
	var defs []rbac.RoleDefinition
	if in.definitions != "" {
		b, err := readLimited(in.definitions)
		if err != nil {
			return nil, badInput{err}
		}
		if defs, err = rbac.ParseRoleDefinitions(b); err != nil {
			return nil, badInput{fmt.Errorf("%s: %w", in.definitions, err)}
		}
		// The export of a subscription lists the built-ins too: keep only
		// the custom ones, the engine knows the rest.
		custom := defs[:0]
		for _, d := range defs {
			if _, builtin := rbac.LookupRole(d.Name); !builtin {
				custom = append(custom, d)
			}
		}
		defs = custom
	}
	b, err := readLimited(in.assignments)
	if err != nil {
		return nil, badInput{err}
	}
	assignments, err := rbac.ParseAssignments(b)
	if err != nil {
		return nil, badInput{fmt.Errorf("%s: %w", in.assignments, err)}
	}
	var denies []rbac.DenyAssignment
	if in.denies != "" {
		b, err := readLimited(in.denies)
		if err != nil {
			return nil, badInput{err}
		}
		if denies, err = rbac.ParseDenyAssignments(b); err != nil {
			return nil, badInput{fmt.Errorf("%s: %w", in.denies, err)}
		}
	}
	opts := rbac.Options{CompileCondition: rbac.CompileCondition}
	if in.directory != "" {
		b, err := readLimited(in.directory)
		if err != nil {
			return nil, badInput{err}
		}
		d, err := access.ParseStaticDirectory(b)
		if err != nil {
			return nil, badInput{fmt.Errorf("%s: %w", in.directory, err)}
		}
		opts.Principals = d
	}
	e, err := rbac.Compile(defs, assignments, denies, opts)
	if err != nil {
		return nil, badInput{fmt.Errorf("compile: %w", err)}
	}
	return e, nil
}

// attributeFile is --attributes: {"Resource": {"name": ["value", ...]}, "Request": {...}, ...}.
type attributeFile map[string]map[string][]string

func (a attributeFile) Attribute(source, name string) ([]string, bool) {
	v, ok := a[source][name]
	return v, ok
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRBACCheckCmd() *cobra.Command {
	var in rbacInputs
	var principal, action, scope, attrs string
	var dataAction bool
	cmd := &cobra.Command{
		Use:   "check --assignments FILE --principal ID --action OP --scope SCOPE",
		Short: "May a principal perform an action at a scope, and why",
		Long: `Check answers one access question exactly as Azure RBAC does: wildcards,
NotActions that subtract without denying, grants added across assignments,
inheritance down the scope tree, actions and data actions kept apart, deny
assignments first, ABAC conditions (--attributes gives the request's
attributes: {"Resource": {"<name>": ["<value>"]}, "Request": {...}}).

The input files are what 'az role definition list' and 'az role assignment
list' print, as they are. Standard output:
{"allowed": bool, "grantedBy": [{"roleAssignmentId", "roleDefinitionName",
"scope", "principalId"}], "deniedBy": {...} | null, "reason": "..."}.
Exit status 0 when evaluated (allowed or not), 2 on bad input.`,
		Example: `  az role assignment list --all > assignments.json
  verity rbac check --assignments assignments.json --principal 2b1c... \
      --action Microsoft.Compute/virtualMachines/start/action \
      --scope /subscriptions/.../resourceGroups/web/providers/Microsoft.Compute/virtualMachines/vm1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal == "" || action == "" || scope == "" {
				return badInput{errors.New("--principal, --action and --scope are required")}
			}
			e, err := in.engine()
			if err != nil {
				return err
			}
			now, err := in.now()
			if err != nil {
				return err
			}
			req := &rbac.Request{PrincipalID: principal, Action: action, DataAction: dataAction, Scope: scope, AllGrants: true, Now: now}
			if attrs != "" {
				b, err := readLimited(attrs)
				if err != nil {
					return badInput{err}
				}
				var a attributeFile
				if err := json.Unmarshal(b, &a); err != nil {
					return badInput{fmt.Errorf("%s: %w", attrs, err)}
				}
				req.Attributes = a
			}
			var d rbac.Decision
			e.Check(req, &d)
			if d.Reason == rbac.ReasonInvalidRequest {
				return badInput{errors.New(d.Reason.String())}
			}
			type grant struct {
				RoleAssignmentID   string     `json:"roleAssignmentId"`
				RoleDefinitionName string     `json:"roleDefinitionName"`
				Scope              string     `json:"scope"`
				PrincipalID        string     `json:"principalId"`
				EndDateTime        *time.Time `json:"endDateTime,omitempty"`
			}
			type deny struct {
				ID                 string `json:"id"`
				DenyAssignmentName string `json:"denyAssignmentName"`
				Scope              string `json:"scope"`
			}
			out := struct {
				Allowed   bool    `json:"allowed"`
				GrantedBy []grant `json:"grantedBy"`
				DeniedBy  *deny   `json:"deniedBy"`
				Reason    string  `json:"reason"`
			}{Allowed: d.Allowed, GrantedBy: []grant{}, Reason: d.Reason.String()}
			for _, g := range d.GrantedBy() {
				out.GrantedBy = append(out.GrantedBy, grant{g.AssignmentID, g.RoleName, g.Scope, g.PrincipalID, g.EndDateTime})
			}
			if d.DeniedBy != nil {
				out.DeniedBy = &deny{d.DeniedBy.ID, d.DeniedBy.DenyAssignmentName, d.DeniedBy.Scope}
			}
			return writeJSONOut(cmd.OutOrStdout(), out)
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&principal, "principal", "", "principal object id (user, group, service principal)")
	cmd.Flags().StringVar(&action, "action", "", "action or data action, e.g. Microsoft.Storage/storageAccounts/read")
	cmd.Flags().BoolVar(&dataAction, "data-action", false, "the action is a data action")
	cmd.Flags().StringVar(&scope, "scope", "", "scope, e.g. /subscriptions/<id>/resourceGroups/<rg>")
	cmd.Flags().StringVar(&attrs, "attributes", "", "ABAC attributes of the request (JSON)")
	return cmd
}

func newRBACWhoCanCmd() *cobra.Command {
	var in rbacInputs
	var action, scope string
	var dataAction bool
	cmd := &cobra.Command{
		Use:   "who-can --assignments FILE --action OP --scope SCOPE",
		Short: "List the principals that may perform an action at a scope",
		Long: `Who-can lists the principals (users, groups, service principals; groups are
not expanded) whose role assignments at the scope or above grant the
action, minus those a deny assignment names. Conditional assignments are
listed when their condition could hold. Output: {"principals": [...]}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if action == "" || scope == "" {
				return badInput{errors.New("--action and --scope are required")}
			}
			e, err := in.engine()
			if err != nil {
				return err
			}
			now, err := in.now()
			if err != nil {
				return err
			}
			ids := e.WhoCan(action, scope, dataAction, now)
			if ids == nil {
				ids = []string{}
			}
			return writeJSONOut(cmd.OutOrStdout(), map[string]any{"principals": ids})
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&action, "action", "", "action or data action")
	cmd.Flags().BoolVar(&dataAction, "data-action", false, "the action is a data action")
	cmd.Flags().StringVar(&scope, "scope", "", "scope")
	return cmd
}

func newRBACPermissionsCmd() *cobra.Command {
	var in rbacInputs
	var principal, scope string
	cmd := &cobra.Command{
		Use:   "permissions --assignments FILE --principal ID --scope SCOPE",
		Short: "List what a principal holds at a scope (roles, permission blocks, denies)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if principal == "" || scope == "" {
				return badInput{errors.New("--principal and --scope are required")}
			}
			e, err := in.engine()
			if err != nil {
				return err
			}
			now, err := in.now()
			if err != nil {
				return err
			}
			type entry struct {
				RoleAssignmentID   string          `json:"roleAssignmentId"`
				RoleDefinitionName string          `json:"roleDefinitionName"`
				Scope              string          `json:"scope"`
				PrincipalID        string          `json:"principalId"`
				Permissions        rbac.Permission `json:"permissions"`
				Condition          string          `json:"condition,omitempty"`
				DeniedBy           []string        `json:"deniedBy,omitempty"`
				EndDateTime        *time.Time      `json:"endDateTime,omitempty"`
			}
			out := []entry{}
			for _, g := range e.Permissions(principal, scope, now) {
				en := entry{RoleAssignmentID: g.AssignmentID, RoleDefinitionName: g.RoleName, Scope: g.Scope, PrincipalID: g.PrincipalID,
					Permissions: g.Permission, Condition: g.Condition, EndDateTime: g.EndDateTime}
				for _, d := range g.Denies {
					en.DeniedBy = append(en.DeniedBy, d.ID)
				}
				out = append(out, en)
			}
			return writeJSONOut(cmd.OutOrStdout(), map[string]any{"value": out})
		},
	}
	in.register(cmd)
	cmd.Flags().StringVar(&principal, "principal", "", "principal object id")
	cmd.Flags().StringVar(&scope, "scope", "", "scope")
	return cmd
}
