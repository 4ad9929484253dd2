package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/apply"
)

func newApplyCmd() *cobra.Command {
	var f clientFlags
	var files []string
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR ...",
		Short: "Apply a tenant manifest (users, groups, apps, locations, role assignments)",
		Long: `Apply makes the directory match the manifest files: YAML or JSON, one file or
a directory of them (see examples/README.md for the format). The server
applies the whole manifest in one transaction: everything or nothing.
Applying the same manifest twice changes nothing.

With --dry-run it prints the plan (create / update / delete) and writes
nothing. Objects that are not in the manifest are left alone, unless
--prune is given: then objects an earlier apply created and the manifest no
longer lists are deleted. Objects made by hand are never pruned.`,
		Example: `  verity apply -f examples/tenant --dry-run
  verity apply -f examples/tenant
  verity apply -f tenant/ --prune`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("-f FILE|DIR is required")
			}
			m, err := apply.ParseFiles(files)
			if err != nil {
				return err
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			q := url.Values{}
			q.Set("dryRun", fmt.Sprint(dryRun))
			q.Set("prune", fmt.Sprint(prune))
			var resp struct {
				Revision int64  `json:"revision"`
				Summary  string `json:"summary"`
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/apply?"+q.Encode(), m, &resp); err != nil {
				// The server names JSON paths; say which file they are in.
				var ae *apiError
				if errors.As(err, &ae) {
					if ae.Target != "" {
						ae.Target = m.Locate(ae.Target)
					}
					for i := range ae.Details {
						ae.Details[i].Target = m.Locate(ae.Details[i].Target)
					}
				}
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(resp.Summary, "\n"))
			if !dryRun && resp.Revision > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "Applied at revision %d.\n", resp.Revision)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file or directory (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan without changing anything")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete objects an earlier apply created that the manifest no longer lists")
	return cmd
}

func newExportCmd() *cobra.Command {
	var f clientFlags
	var output, format string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the directory as a tenant manifest",
		Long: `Export writes users, groups (with members), applications, service principals,
named locations, app routes and role assignments in the manifest format that
'verity apply' reads, with object ids, so applying it to a fresh node
recreates the same tenant.`,
		Example: `  verity export -o tenant.yaml
  verity export --format json > tenant.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var raw []byte
			if err := c.do(cmd.Context(), "GET", "/api/v1/export", nil, &raw); err != nil {
				return err
			}
			var m apply.Manifest
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("decode export: %w", err)
			}
			var out []byte
			switch format {
			case "yaml":
				out, err = m.YAML()
			case "json":
				out, err = json.MarshalIndent(&m, "", "  ")
				out = append(out, '\n')
			default:
				return fmt.Errorf("--format must be yaml or json, not %q", format)
			}
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			return os.WriteFile(output, out, 0o600)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default standard output)")
	cmd.Flags().StringVar(&format, "format", "yaml", "yaml or json")
	return cmd
}
