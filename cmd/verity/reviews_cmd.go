package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/pim"
)

// newReviewsCmd is access reviews from the command line
// (docs/access-reviews.md).
func newReviewsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reviews",
		Short: "Access reviews: who still needs the roles they hold",
	}
	cmd.AddCommand(reviewsCreateCmd(), reviewsListCmd(), reviewsDecisionsCmd(), reviewsDecideCmd(),
		reviewsInstanceCmd("stop", "Stop an instance: one in progress ends now, one not started is skipped"),
		reviewsInstanceCmd("apply", "Apply a completed instance's denials (when the review does not apply them itself)"),
		reviewsDeleteCmd())
	return cmd
}

// maxDefinitionFile bounds what create reads (the server bounds the body
// too).
const maxDefinitionFile = 1 << 20

func reviewsCreateCmd() *cobra.Command {
	var f clientFlags
	var file string
	cmd := &cobra.Command{
		Use:   "create --file DEFINITION.json",
		Short: "Create an access review from a JSON definition",
		Long: `Create sends the definition as it is (Graph's accessReviewScheduleDefinition
field names; see docs/access-reviews.md): the server names any unknown field,
wrong type or invalid setting by its path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := readDefinition(file)
			if err != nil {
				return err
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var d pim.ReviewDefinition
			if err := c.do(cmd.Context(), "POST", "/api/v1/accessReviews/definitions", body, &d); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "access review %s: %q, %s\n", d.ID, d.DisplayName, d.Status)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&file, "file", "", "the definition (JSON; - for standard input)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readDefinition reads a definition file ("-": standard input) and
// checks that it is JSON.
func readDefinition(file string) (json.RawMessage, error) {
	r := io.Reader(os.Stdin)
	if file != "-" {
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	b, err := io.ReadAll(io.LimitReader(r, maxDefinitionFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", file, err)
	case len(b) > maxDefinitionFile:
		return nil, fmt.Errorf("%s is larger than %d bytes", file, maxDefinitionFile)
	case !json.Valid(b):
		return nil, fmt.Errorf("%s is not JSON", file)
	}
	return json.RawMessage(b), nil
}

func reviewsListCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "list [DEFINITION]",
		Short: "List the access reviews you manage or review, or one review's instances",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			if len(args) == 0 {
				var page struct{ Value []pim.ReviewDefinition }
				if err := c.do(cmd.Context(), "GET", "/api/v1/accessReviews/definitions", nil, &page); err != nil {
					return err
				}
				fmt.Fprintln(tw, "ID\tNAME\tKIND\tSCOPE\tRECURRENCE\tSTATUS")
				for _, d := range page.Value {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.DisplayName, d.Scope.RoleKind, d.Scope.ResourceScope, d.Settings.Recurrence.Type, d.Status)
				}
				return tw.Flush()
			}
			fmt.Fprintln(tw, "INSTANCE\tSTATUS\tSTART\tEND\tITEMS\tDENIED\tAPPLIED\tFAILED")
			next := "/api/v1/accessReviews/definitions/" + url.PathEscape(args[0]) + "/instances"
			for next != "" {
				var page struct {
					Value    []pim.ReviewInstance
					NextLink string `json:"@odata.nextLink"`
				}
				if err := c.do(cmd.Context(), "GET", next, nil, &page); err != nil {
					return err
				}
				for _, inst := range page.Value {
					s := pim.ReviewStats{}
					if inst.Summary != nil {
						s = *inst.Summary
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", inst.ID, inst.Status, inst.StartDateTime.Format(time.RFC3339),
						inst.EndDateTime.Format(time.RFC3339), s.Items, s.Denied, s.Applied, s.Failed)
				}
				next = page.NextLink
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	return cmd
}

// maxListedItems bounds how many items decisions prints.
const maxListedItems = 10000

func reviewsDecisionsCmd() *cobra.Command {
	var f clientFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "decisions [INSTANCE] [--all]",
		Short: "List the items waiting for your decision (in one instance, or in every review in progress)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			q := url.Values{}
			if !all {
				q.Set("decision", pim.DecisionNotReviewed)
			}
			next := "/api/v1/accessReviews/decisions/me"
			if len(args) == 1 {
				next = "/api/v1/accessReviews/instances/" + url.PathEscape(args[0]) + "/decisions"
				q.Set("filter", "mine")
			}
			next += "?" + q.Encode()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ITEM\tPRINCIPAL\tROLE\tSCOPE\tHELD\tRECOMMENDATION\tDECISION")
			for n := 0; next != "" && n < maxListedItems; {
				var page struct {
					Value    []pim.ReviewItem
					NextLink string `json:"@odata.nextLink"`
				}
				if err := c.do(cmd.Context(), "GET", next, nil, &page); err != nil {
					return err
				}
				for _, it := range page.Value {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.ID, shown(it.Principal), shown(it.Role), it.Scope, held(it), it.Recommendation, it.Decision)
				}
				n += len(page.Value)
				next = page.NextLink
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "also the items already decided")
	return cmd
}

// shown is how a listing names a principal or role.
func shown(id pim.Identity) string {
	if id.DisplayName != "" {
		return id.DisplayName
	}
	return id.ID
}

// held says how an item's principal holds the role.
func held(it pim.ReviewItem) string {
	parts := []string{strings.ToLower(it.AssignmentState)}
	if it.ViaGroup != nil {
		parts = append(parts, "via "+shown(*it.ViaGroup))
	}
	if it.EndDateTime != nil {
		parts = append(parts, "until "+it.EndDateTime.Format(time.RFC3339))
	}
	return strings.Join(parts, ", ")
}

func reviewsDecideCmd() *cobra.Command {
	var f clientFlags
	var approve, deny, dontKnow bool
	var justification string
	cmd := &cobra.Command{
		Use:   "decide ITEM --approve|--deny|--dont-know [--justification TEXT]",
		Short: "Record your decision on an item (it can change until the review ends)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var decision string
			switch {
			case approve && !deny && !dontKnow:
				decision = pim.DecisionApprove
			case deny && !approve && !dontKnow:
				decision = pim.DecisionDeny
			case dontKnow && !approve && !deny:
				decision = pim.DecisionDontKnow
			default:
				return errors.New("give exactly one of --approve, --deny and --dont-know")
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var it pim.ReviewItem
			if err := c.do(cmd.Context(), "POST", "/api/v1/accessReviews/decisions/"+url.PathEscape(args[0]),
				map[string]string{"decision": decision, "justification": justification}, &it); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s for %s (%s at %s)\n", it.ID, it.Decision, shown(it.Principal), shown(it.Role), it.Scope)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&approve, "approve", false, "keep the access")
	cmd.Flags().BoolVar(&deny, "deny", false, "take the access away when the review's decisions are applied")
	cmd.Flags().BoolVar(&dontKnow, "dont-know", false, "say you cannot tell")
	cmd.Flags().StringVar(&justification, "justification", "", "why")
	return cmd
}

func reviewsInstanceCmd(verb, short string) *cobra.Command {
	var f clientFlags
	action := map[string]string{"stop": "stop", "apply": "applyDecisions"}[verb]
	cmd := &cobra.Command{
		Use:   verb + " INSTANCE",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var inst pim.ReviewInstance
			if err := c.do(cmd.Context(), "POST", "/api/v1/accessReviews/instances/"+url.PathEscape(args[0])+"/"+action, nil, &inst); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "instance %s: %s\n", inst.ID, inst.Status)
			if s := inst.Summary; s != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "%d items: %d approved, %d denied, %d not reviewed, %d don't know; %d applied, %d failed\n",
					s.Items, s.Approved, s.Denied, s.NotReviewed, s.DontKnow, s.Applied, s.Failed)
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func reviewsDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete DEFINITION",
		Short: "Delete an access review with its instances and decisions (what was applied stays applied)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", "/api/v1/accessReviews/definitions/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "access review %s deleted\n", args[0])
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
