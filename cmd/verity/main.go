// Command verity is the one Verity binary: the server, the all-in-one first
// look, and the admin and policy-as-code client.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx); err != nil {
		if msg := err.Error(); msg != "" { // an empty message: the command already reported
			fmt.Fprintln(os.Stderr, "verity:", msg)
		}
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// exitCoder lets a command choose its exit status (a plan with changes
// under --detailed-exitcode exits 2).
type exitCoder interface{ ExitCode() int }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "verity",
		Short: "Verity is a Zero Trust access control plane",
		Long: `Verity verifies every request explicitly: it combines conditional access and
role-based access control over one directory of users, groups, applications
and named locations, and records every decision and change.

Start a local instance with 'verity up'; run a production node with
'verity server --config FILE', or one that serves only the identity-aware
proxy with 'verity proxy --config FILE'; manage a tenant as code with
'verity apply'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(
		newUpCmd(), newServerCmd(), newProxyCmd(), newConfigCmd(), newVersionCmd(),
		newLoginCmd(), newLogoutCmd(), newApplyCmd(), newExportCmd(), newAdminCmd(), newAccessCmd(), newRBACCmd(), newAuditCmd(), newAlertsCmd(), newRiskCmd(), newPIMCmd(), newReviewsCmd(), newJITCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "verity", version.String())
			return nil
		},
	}
}
