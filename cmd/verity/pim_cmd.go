package main

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/pim"
)

// newPIMCmd is just-in-time privilege from the command line
// (docs/pim.md).
func newPIMCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pim",
		Short: "Just-in-time roles: eligibilities, activation, requests and approval",
	}
	var fe clientFlags
	eligible := &cobra.Command{
		Use:   "eligible",
		Short: "List the roles you (or, as an administrator, anyone) may activate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := fe.newClient(true)
			if err != nil {
				return err
			}
			var page struct{ Value []pim.Eligibility }
			if err := c.do(cmd.Context(), "GET", "/api/v1/pim/eligibilities", nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PRINCIPAL\tROLE\tKIND\tSCOPE\tUNTIL\tID")
			for _, e := range page.Value {
				until := "permanent"
				if e.EndDateTime != nil {
					until = e.EndDateTime.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.PrincipalID, e.RoleDefinitionID, e.RoleKind, e.Scope, until, e.ID)
			}
			return tw.Flush()
		},
	}
	fe.register(eligible)

	var fa clientFlags
	var role, scope, justification, ticket, ticketSystem string
	var duration time.Duration
	var directoryRole bool
	activate := &cobra.Command{
		Use:   "activate --role ROLE [--scope SCOPE] --justification TEXT [--duration 1h] [--ticket N] [--directory]",
		Short: "Activate a role you are eligible for",
		Long: `Activate asks for a role you are eligible for, for a bounded time. The role's
settings may ask for a sign-in with a second factor (sign in again with
'verity login --otp' or --web), a justification, ticket information, and an
approver's approval — then the request waits, and 'verity pim requests' shows it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := fa.newClient(true)
			if err != nil {
				return err
			}
			req := pim.Request{RequestType: pim.SelfActivate, RoleDefinitionID: role, Scope: scope, Justification: justification}
			if directoryRole {
				req.RoleKind = pim.RoleKindDirectory
			}
			if duration > 0 {
				d := pim.Duration(duration)
				req.ScheduleInfo.Expiration = pim.Expiration{Type: "AfterDuration", Duration: &d}
			}
			if ticket != "" {
				req.TicketInfo = &pim.TicketInfo{TicketNumber: ticket, TicketSystem: ticketSystem}
			}
			var out pim.Request
			if err := c.do(cmd.Context(), "POST", "/api/v1/pim/requests", req, &out); err != nil {
				return err
			}
			printRequest(cmd, out)
			return nil
		},
	}
	fa.register(activate)
	activate.Flags().StringVar(&role, "role", "", "the role, by name or id (e.g. Contributor)")
	activate.Flags().StringVar(&scope, "scope", "/", "where (e.g. /apps/payroll)")
	activate.Flags().StringVar(&justification, "justification", "", "why")
	activate.Flags().DurationVar(&duration, "duration", 0, "how long (at most the role's maximum; default that maximum)")
	activate.Flags().StringVar(&ticket, "ticket", "", "ticket number")
	activate.Flags().StringVar(&ticketSystem, "ticket-system", "", "ticket system")
	activate.Flags().BoolVar(&directoryRole, "directory", false, "the role is a directory role (Global Administrator, ...)")
	_ = activate.MarkFlagRequired("role")

	var fd clientFlags
	var drole, dscope string
	var ddir bool
	deactivate := &cobra.Command{
		Use:   "deactivate --role ROLE [--scope SCOPE] [--directory]",
		Short: "End your activation of a role before its time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := fd.newClient(true)
			if err != nil {
				return err
			}
			req := pim.Request{RequestType: pim.SelfDeactivate, RoleDefinitionID: drole, Scope: dscope}
			if ddir {
				req.RoleKind = pim.RoleKindDirectory
			}
			var out pim.Request
			if err := c.do(cmd.Context(), "POST", "/api/v1/pim/requests", req, &out); err != nil {
				return err
			}
			printRequest(cmd, out)
			return nil
		},
	}
	fd.register(deactivate)
	deactivate.Flags().StringVar(&drole, "role", "", "the role, by name or id")
	deactivate.Flags().StringVar(&dscope, "scope", "/", "where")
	deactivate.Flags().BoolVar(&ddir, "directory", false, "a directory role")
	_ = deactivate.MarkFlagRequired("role")

	var fr clientFlags
	var status string
	var toApprove bool
	requests := &cobra.Command{
		Use:   "requests [--status PendingApproval] [--to-approve]",
		Short: "List requests: yours, those you may approve, or (administrators) all",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := fr.newClient(true)
			if err != nil {
				return err
			}
			q := url.Values{}
			if status != "" {
				q.Set("status", status)
			}
			if toApprove {
				q.Set("approver", "me")
			}
			var page struct{ Value []pim.Request }
			if err := c.do(cmd.Context(), "GET", "/api/v1/pim/requests?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tPRINCIPAL\tROLE\tSCOPE\tUNTIL\tJUSTIFICATION")
			for _, r := range page.Value {
				until := ""
				if e := r.ScheduleInfo.Expiration.EndDateTime; e != nil {
					until = e.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.RequestType, r.Status, r.PrincipalID, r.RoleDefinitionID, r.Scope, until, r.Justification)
			}
			return tw.Flush()
		},
	}
	fr.register(requests)
	requests.Flags().StringVar(&status, "status", "", "only requests in this status")
	requests.Flags().BoolVar(&toApprove, "to-approve", false, "only the requests waiting for your approval")

	var ff clientFlags
	findings := &cobra.Command{
		Use:   "findings",
		Short: "Standing privilege PIM would take away: privileged roles held for good, too many Owners or Global Administrators, unused eligibilities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := ff.newClient(true)
			if err != nil {
				return err
			}
			var page struct{ Value []pim.Finding }
			if err := c.do(cmd.Context(), "GET", "/api/v1/pim/findings", nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEVERITY\tKIND\tSUMMARY\tDO")
			for _, f := range page.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.Kind, f.Summary, f.Recommendation)
			}
			return tw.Flush()
		},
	}
	ff.register(findings)
	cmd.AddCommand(eligible, activate, deactivate, requests, pimDecideCmd("approve", true), pimDecideCmd("deny", false), findings)
	return cmd
}

func pimDecideCmd(verb string, approve bool) *cobra.Command {
	var f clientFlags
	var justification string
	cmd := &cobra.Command{
		Use:   verb + " ID --justification TEXT",
		Short: map[bool]string{true: "Approve a request waiting for you", false: "Deny a request waiting for you"}[approve],
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var out pim.Request
			if err := c.do(cmd.Context(), "POST", "/api/v1/pim/requests/"+url.PathEscape(args[0])+"/"+verb,
				map[string]string{"justification": justification}, &out); err != nil {
				return err
			}
			printRequest(cmd, out)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&justification, "justification", "", "why")
	return cmd
}

func printRequest(cmd *cobra.Command, r pim.Request) {
	fmt.Fprintf(cmd.OutOrStdout(), "request %s: %s %s\n", r.ID, r.RequestType, r.Status)
	if s := r.ScheduleInfo.StartDateTime; s != nil && r.Status == pim.StatusProvisioned {
		if e := r.ScheduleInfo.Expiration.EndDateTime; e != nil {
			fmt.Fprintf(cmd.OutOrStdout(), "active from %s until %s\n", s.Format(time.RFC3339), e.Format(time.RFC3339))
		}
	}
	if r.Status == pim.StatusPendingApproval && r.ApprovalDeadline != nil {
		fmt.Fprintf(cmd.OutOrStdout(), "waiting for approval until %s\n", r.ApprovalDeadline.Format(time.RFC3339))
	}
}
