package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/detect"
)

func newAlertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "The alerts the detectors raised: list, show, acknowledge, close",
	}
	var f clientFlags
	var detector, status string
	list := &cobra.Command{
		Use:   "list [--detector NAME] [--status new|acknowledged|closed]",
		Short: "List alerts, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			q := url.Values{}
			if detector != "" {
				q.Set("detector", detector)
			}
			if status != "" {
				q.Set("status", status)
			}
			var page struct{ Value []detect.StoredAlert }
			if err := c.do(cmd.Context(), "GET", "/api/v1/security/alerts?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tRAISED\tDETECTOR\tSEVERITY\tSTATUS\tSUMMARY")
			for _, a := range page.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Raised.Format("2006-01-02 15:04"), a.Detector, a.Severity, a.Status, a.Summary)
			}
			return tw.Flush()
		},
	}
	f.register(list)
	list.Flags().StringVar(&detector, "detector", "", "only this detector's alerts ("+strings.Join(detect.DetectorNames(), ", ")+")")
	list.Flags().StringVar(&status, "status", "", "only alerts in this state")

	var fs clientFlags
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show an alert with its evidence",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := fs.newClient(true)
			if err != nil {
				return err
			}
			var a json.RawMessage
			if err := c.do(cmd.Context(), "GET", "/api/v1/security/alerts/"+url.PathEscape(args[0]), nil, &a); err != nil {
				return err
			}
			var out any
			_ = json.Unmarshal(a, &out)
			b, _ := json.MarshalIndent(out, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	fs.register(show)
	cmd.AddCommand(list, show, alertUpdateCmd("ack", "acknowledge", "Acknowledge an alert"), alertUpdateCmd("close", "close", "Close an alert"),
		newAlertsReplayCmd())
	return cmd
}

// newAlertsReplayCmd runs the detectors over exported logs, offline.
func newAlertsReplayCmd() *cobra.Command {
	var configFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "replay FILE... [--config FILE] [--json]",
		Short: "Run the detectors over exported sign-in and audit logs, offline",
		Long: `Replay reads sign-in and audit logs as they are exported from Microsoft Entra and
Azure — Log Analytics rows (SigninLogs, AADNonInteractiveUserSignInLogs, AuditLogs,
OfficeActivity, AzureDiagnostics for Key Vault) as CSV or JSON lines, and Azure Monitor
diagnostic records — runs every detector over them in time order, with the thresholds of
the detect section of --config (or VERITY_DETECT_ variables), and prints the alerts. It
needs no server and changes nothing.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(configFile, os.Environ())
			if err != nil {
				return err
			}
			setup, err := detection(cfg.Detect)
			if err != nil {
				return err
			}
			var signIns []detect.SignIn
			var records []detect.AuditRecord
			for _, name := range args {
				b, err := os.ReadFile(name)
				if err != nil {
					return err
				}
				if len(bytes.TrimSpace(b)) == 0 {
					return fmt.Errorf("%s: empty: no sign-in or audit record in it", name)
				}
				s, err := detect.ReadSignIns(bytes.NewReader(b))
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				r, err := detect.ReadAuditRecords(bytes.NewReader(b))
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if len(s) == 0 && len(r) == 0 {
					return fmt.Errorf("%s: no sign-in or audit record in it", name)
				}
				signIns, records = append(signIns, s...), append(records, r...)
			}
			alerts := append(detect.Run(signIns, setup.signIns()), detect.RunAudit(records, setup.audit())...)
			slices.SortStableFunc(alerts, func(a, b detect.Alert) int { return a.First.Compare(b.First) })
			fmt.Fprintf(cmd.ErrOrStderr(), "%d sign-ins and %d audit records: %d alerts\n", len(signIns), len(records), len(alerts))
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, a := range alerts {
					if err := enc.Encode(a); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FIRST\tDETECTOR\tSEVERITY\tMITRE\tSUMMARY")
			for _, a := range alerts {
				first := "-" // a hunting export without a time column
				if !a.First.IsZero() {
					first = a.First.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", first, a.Detector, a.Severity, strings.Join(a.MITRE, ","), a.Summary)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file whose detect section sets the detectors")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the alerts as JSON lines, with their evidence")
	return cmd
}

func alertUpdateCmd(use, verb, short string) *cobra.Command {
	var f clientFlags
	var comment string
	cmd := &cobra.Command{
		Use:   use + " ID [--comment TEXT]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var body any
			if comment != "" {
				body = map[string]string{"comment": comment}
			}
			var a detect.StoredAlert
			if err := c.do(cmd.Context(), "POST", "/api/v1/security/alerts/"+url.PathEscape(args[0])+"/"+verb, body, &a); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "alert %s is %s\n", a.ID, a.Status)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&comment, "comment", "", "why")
	return cmd
}

func newRiskCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "risk",
		Short: "Users' risk: list, confirm compromised, dismiss",
	}
	var fl clientFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List the users with a risk record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := fl.newClient(true)
			if err != nil {
				return err
			}
			var page struct {
				Value []struct {
					ID, UserPrincipalName, RiskLevel, RiskState, RiskLastUpdatedDateTime string
				}
			}
			if err := c.do(cmd.Context(), "GET", "/api/v1/identityProtection/riskyUsers", nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tLEVEL\tSTATE\tUPDATED\tID")
			for _, u := range page.Value {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.UserPrincipalName, u.RiskLevel, u.RiskState, u.RiskLastUpdatedDateTime, u.ID)
			}
			return tw.Flush()
		},
	}
	fl.register(list)
	cmd.AddCommand(list, riskActionCmd("confirm", "confirmCompromised", "Confirm that users are compromised (risk high)"),
		riskActionCmd("dismiss", "dismiss", "Dismiss users' risk (none, until a new detection)"))
	return cmd
}

func riskActionCmd(use, action, short string) *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   use + " USER...",
		Short: short,
		Args:  cobra.RangeArgs(1, 60),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/identityProtection/riskyUsers/"+action, map[string]any{"userIds": args}, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", action, strings.Join(args, ", "))
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
