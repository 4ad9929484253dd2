package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/config"
)

func newConfigCmd() *cobra.Command {
	var showEffective bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check and explain the configuration file",
	}
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Validate a configuration file and the VERITY_ environment variables",
		Long: `Validate reads FILE (YAML or JSON) exactly as 'verity server' would, applies
VERITY_ environment overrides, and reports the first problem with its path
(for example "store.connectTimeout: must be a duration such as "30s"").
It never connects to the database.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0], os.Environ())
			if err != nil {
				return err
			}
			// The detectors' settings and playbooks, checked as a node does.
			if _, err := detection(cfg.Detect); err != nil {
				return err
			}
			if showEffective {
				b, _ := json.MarshalIndent(redacted(cfg), "", "  ")
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: valid\n", args[0])
			return nil
		},
	}
	validate.Flags().BoolVar(&showEffective, "print", false, "print the effective configuration (defaults and overrides applied; DSN password redacted)")
	env := &cobra.Command{
		Use:   "env",
		Short: "List every VERITY_ environment variable and the field it sets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, v := range config.EnvVars() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-36s %s\n", v.Name, v.Path)
			}
			return nil
		},
	}
	cmd.AddCommand(validate, env)
	return cmd
}

// redacted hides the DSN password before a config is printed.
func redacted(cfg config.Config) config.Config {
	cfg.Store.DSN = storeConfig(cfg).RedactedDSN()
	return cfg
}
