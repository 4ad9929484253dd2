package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/config"
)

func newUpCmd() *cobra.Command {
	var addr, data string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run an all-in-one Verity for a first look",
		Long: `Up runs Verity on one port with the embedded SQLite database in ./verity-data
(or $VERITY_DATA, or --data) and a local certificate authority generated in
DATA/tls when no certificate files are configured.

On first start it creates a bootstrap administrator and prints its one-time
password; the database keeps only a hash. It prints the URL and the command
to sign in. Stop it with Ctrl-C: in-flight requests finish first.

Every configuration field can still be set with VERITY_ variables
(see 'verity config env').`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := os.Environ()
			if data == "" {
				data = os.Getenv("VERITY_DATA")
			}
			if data != "" {
				env = append(env, "VERITY_DATA_DIR="+data)
			}
			if addr != "" {
				env = append(env, "VERITY_HTTP_ADDR="+addr)
			}
			cfg, err := config.Load("", env)
			if err != nil {
				return err
			}
			if abs, err := filepath.Abs(cfg.DataDir); err == nil {
				cfg.DataDir = abs
			}
			return runNode(cmd.Context(), cfg, nodeOptions{devTLS: true, out: cmd.OutOrStdout()}, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen address (default 127.0.0.1:8443)")
	cmd.Flags().StringVar(&data, "data", "", "data directory (default ./verity-data, or $VERITY_DATA)")
	return cmd
}

func newServerCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a production Verity node",
		Long: `Server runs one Verity node from a configuration file (YAML or JSON; see
docs/configuration.md), with VERITY_ environment variables overriding any
field. Use PostgreSQL (store.dsn: postgres://...) to run several nodes on one
database; they learn of each other's changes within a second.

TLS certificate files are required unless http.tls.disable is true. On an
empty database the node creates a bootstrap administrator and prints its
one-time password on standard output. SIGTERM shuts down gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOfflineConfig(file, "")
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), cfg, nodeOptions{out: cmd.OutOrStdout()}, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (or $VERITY_CONFIG); without one, defaults and VERITY_ variables apply")
	return cmd
}

func newProxyCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run a Verity node that serves only the identity-aware proxy",
		Long: `Proxy runs a node that serves only the identity-aware proxy (proxy.addr),
for an enforcement point at the edge apart from the nodes that serve the API
and sign-in. It takes the same configuration file as 'verity server' and
needs the same store (store.dsn: PostgreSQL shared with the other nodes) and
master key (secrets.masterKeyFile), and proxy.signInURL: the external URL of
the nodes that serve sign-in. On http.addr it serves only /healthz, /readyz
and /metrics. It creates no bootstrap administrator. SIGTERM shuts down
gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadOfflineConfig(file, "")
			if err != nil {
				return err
			}
			return runNode(cmd.Context(), cfg, nodeOptions{proxyOnly: true, out: cmd.OutOrStdout()}, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (or $VERITY_CONFIG); without one, defaults and VERITY_ variables apply")
	return cmd
}
