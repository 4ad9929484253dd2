package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/geo"
)

// badInput is an error in what the user gave a command; it exits 2.
type badInput struct{ err error }

func (e badInput) Error() string { return e.err.Error() }
func (e badInput) Unwrap() error { return e.err }
func (e badInput) ExitCode() int { return 2 }

func newAccessCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Test conditional access policies offline (What If, for CI)",
	}
	cmd.AddCommand(newAccessEvaluateCmd(), newAccessLintCmd(), newAccessReplayCmd())
	return cmd
}

func newAccessLintCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "lint PATH...",
		Short: "Find common mistakes in a set of conditional access policies",
		Long: `Lint reads policies (files or directories, the same shapes as 'access
evaluate --policies') and reports, as a set:

  breakGlassNotExcluded  an enabled policy covers all users and excludes no
                         user or group (emergency-access accounts)
  adminsWithoutMFA       no enabled policy requires MFA of administrators for
                         all applications
  legacyAuthNotBlocked   no enabled policy blocks legacy authentication
  neverApplies           a policy excludes everything it includes
  shadowed               an enabled policy has the same conditions as an
                         enabled blocking one, so its controls never matter

Exit status: 0 when there is nothing to report, 1 when there are findings,
2 on bad input.`,
		Example: `  verity access lint policies/
  verity access lint --format json policies/ > findings.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := readPolicies(io.Discard, args)
			if err != nil {
				return badInput{err}
			}
			findings := access.Lint(all)
			switch format {
			case "text":
				for _, f := range findings {
					fmt.Fprintln(cmd.OutOrStdout(), f)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d policies, %d findings\n", len(all), len(findings))
			case "json":
				if findings == nil {
					findings = []access.Finding{}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(findings); err != nil {
					return err
				}
			default:
				return badInput{fmt.Errorf("--format must be text or json, not %q", format)}
			}
			if len(findings) > 0 {
				return findingsExit{}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

// findingsExit makes lint exit 1 when it found something.
type findingsExit struct{}

// Error is empty: the findings and their count are already printed.
func (e findingsExit) Error() string { return "" }
func (e findingsExit) ExitCode() int { return 1 }

// maxInputFile bounds every file the offline commands read.
const maxInputFile = 64 << 20

func newAccessEvaluateCmd() *cobra.Command {
	var policies, locations []string
	var dirFile, mmdb, requestFile string
	cmd := &cobra.Command{
		Use:   "evaluate --policies PATH --request FILE",
		Short: "Evaluate a sign-in against conditional access policies, offline",
		Long: `Evaluate answers Graph's What If question without a server: which policies
apply to a sign-in, why the others do not, and the outcome.

--policies is a file holding one Graph conditionalAccessPolicy, a JSON array
of them, or a Graph list response {"value": [...]}, or a directory of such
.json files; repeat it to combine. Entra exports and Microsoft's templates
read as they are; properties Verity does not evaluate are reported on
standard error as notes.

--request is exactly the body of Graph's POST
/identity/conditionalAccess/evaluate (signInIdentity, signInContext,
signInConditions, appliedPoliciesOnly), plus Verity's optional
"satisfiedControls" (e.g. ["mfa"]) and "authenticationMethods".

--named-locations gives the Graph namedLocation objects policies refer to
(same file shapes as --policies). --directory gives the users' groups and
roles: {"users":[{"id","userType","memberOf","roles"}], "groups":[{"id",
"memberOf"}]} (memberOf is direct; nesting is resolved), or a Graph user
list with expanded memberOf or transitiveMemberOf ({"value": [...]}, as
GET /users?$expand=transitiveMemberOf answers). --mmdb is a
MaxMind-format country database used when the request has an ipAddress but
no country.

Standard output is Graph's evaluate response ("value": one result per
policy with policyApplies and analysisReasons) plus "result" with the
outcome (block, grant, interrupt, notApplied), unmetControls and
sessionControls. Exit status 0 when evaluated, 2 on bad input.`,
		Example: `  verity access evaluate --policies policies/ --named-locations locations.json \
      --directory directory.json --request signin.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(policies) == 0 || requestFile == "" {
				return badInput{errors.New("--policies and --request are required")}
			}
			all, err := readPolicies(cmd.ErrOrStderr(), policies)
			if err != nil {
				return badInput{err}
			}
			var named []directory.NamedLocation
			for _, p := range locations {
				ls, err := readNamedLocations(p)
				if err != nil {
					return badInput{err}
				}
				named = append(named, ls...)
			}
			eng, err := access.Compile(all, access.CompileOptions{NamedLocations: named, AppGroups: access.BuiltinAppGroups()})
			if err != nil {
				return badInput{fmt.Errorf("compile policies: %w", err)}
			}
			body, err := readLimited(requestFile)
			if err != nil {
				return badInput{err}
			}
			req, err := access.ParseEvaluateRequest(body)
			if err != nil {
				return badInput{fmt.Errorf("%s: %w", requestFile, err)}
			}
			if dirFile != "" {
				b, err := readLimited(dirFile)
				if err != nil {
					return badInput{err}
				}
				d, err := access.ParseStaticDirectory(b)
				if err != nil {
					return badInput{fmt.Errorf("%s: %w", dirFile, err)}
				}
				req.Resolve(d)
			}
			if mmdb != "" && req.Country == "" && req.IP.IsValid() {
				db, err := geo.Open(mmdb)
				if err != nil {
					return badInput{err}
				}
				defer db.Close()
				if req.Country, err = db.Country(req.IP); err != nil {
					return badInput{err}
				}
			}
			if req.Now.IsZero() {
				req.Now = time.Now()
			}
			var res access.Result
			eng.Evaluate(req, &res)
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res.WhatIf())
		},
	}
	cmd.Flags().StringArrayVar(&policies, "policies", nil, "policy file or directory (repeatable)")
	cmd.Flags().StringArrayVar(&locations, "named-locations", nil, "named location file or directory (repeatable)")
	cmd.Flags().StringVar(&dirFile, "directory", "", "users' groups and roles (JSON)")
	cmd.Flags().StringVar(&mmdb, "mmdb", "", "MaxMind-format country database")
	cmd.Flags().StringVar(&requestFile, "request", "", "Graph evaluate request body (JSON)")
	return cmd
}

// jsonFiles expands a path into the .json files it names: itself, or the
// directory's .json files in name order.
func jsonFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".json") {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no .json files", path)
	}
	return out, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInputFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxInputFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxInputFile)
	}
	return b, nil
}

// readPolicies reads every policy under each path (a file or a directory
// of .json files), printing notes to w.
func readPolicies(w io.Writer, paths []string) ([]*access.Policy, error) {
	var files []string
	for _, p := range paths {
		fs, err := jsonFiles(p)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	var out []*access.Policy
	for _, f := range files {
		b, err := readLimited(f)
		if err != nil {
			return nil, err
		}
		ps, notes, err := access.ParsePolicies(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, n := range notes {
			fmt.Fprintf(w, "note: %s: %s\n", f, n)
		}
		out = append(out, ps...)
	}
	return out, nil
}

// readNamedLocations reads Graph namedLocation objects: one, an array, or
// a list response, from a file or a directory of files.
func readNamedLocations(path string) ([]directory.NamedLocation, error) {
	files, err := jsonFiles(path)
	if err != nil {
		return nil, err
	}
	var out []directory.NamedLocation
	for _, f := range files {
		b, err := readLimited(f)
		if err != nil {
			return nil, err
		}
		items, err := splitCollection(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for i, item := range items {
			l, err := directory.NamedLocations.Parse(item)
			if err != nil {
				if len(items) > 1 {
					return nil, fmt.Errorf("%s: [%d]: %w", f, i, err)
				}
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out = append(out, *l)
		}
	}
	return out, nil
}

// splitCollection returns the objects of a document holding one object, a
// JSON array or a Graph list response {"value": [...]}.
func splitCollection(b []byte) ([]json.RawMessage, error) {
	trimmed := strings.TrimSpace(string(b))
	if strings.HasPrefix(trimmed, "[") {
		var arr []json.RawMessage
		if err := json.Unmarshal(b, &arr); err != nil {
			return nil, fmt.Errorf("malformed JSON array: %w", err)
		}
		return arr, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("malformed JSON: %w", err)
	}
	if v, ok := obj["value"]; ok {
		var arr []json.RawMessage
		if err := json.Unmarshal(v, &arr); err != nil {
			return nil, fmt.Errorf("value: must be an array")
		}
		return arr, nil
	}
	return []json.RawMessage{b}, nil
}

func newAccessReplayCmd() *cobra.Command {
	var f clientFlags
	var policies []string
	var since, format string
	cmd := &cobra.Command{
		Use:   "replay --policies PATH [--since 7d]",
		Short: "Replay candidate policies over the recorded sign-ins of a server",
		Long: `Replay sends candidate policies (files or directories, the same shapes as
'access evaluate --policies') to a Verity server, which evaluates them over
the sign-ins it recorded in the window, against today's directory, and
reports how many sign-ins they would block, challenge or let through next
to the current policies, the sign-ins whose outcome changes, and the users
they would block or challenge. Nothing is changed. Needs the Reader role.`,
		Example: `  verity access replay --policies candidate/ --since 7d
  verity access replay --policies new-policy.json --since 30d --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(policies) == 0 {
				return badInput{errors.New("--policies is required")}
			}
			all, err := readPolicies(cmd.ErrOrStderr(), policies)
			if err != nil {
				return badInput{err}
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var raw []byte
			if err := c.do(cmd.Context(), "POST", "/api/v1/identity/conditionalAccess/replay", map[string]any{"policies": all, "since": since}, &raw); err != nil {
				return err
			}
			if format == "json" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			var r struct {
				From, To                    string
				SignIns, Evaluated, Skipped int
				ChangedTotal                int
				Current, Candidate          struct{ Block, Interrupt, Grant, NotApplied int }
				Changed                     []struct {
					Time, UserPrincipalName, IPAddress, Current, Candidate string
					UnmetControls, Policies                                []string
				}
				Users []struct {
					UserPrincipalName            string
					SignIns, Blocked, Challenged int
				}
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode replay: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Replayed %d sign-ins from %s to %s (%d evaluated, %d of users no longer in the directory).\n\n", r.SignIns, r.From, r.To, r.Evaluated, r.Skipped)
			fmt.Fprintf(w, "%-10s %8s %10s %8s %11s\n", "", "block", "interrupt", "grant", "notApplied")
			fmt.Fprintf(w, "%-10s %8d %10d %8d %11d\n", "current", r.Current.Block, r.Current.Interrupt, r.Current.Grant, r.Current.NotApplied)
			fmt.Fprintf(w, "%-10s %8d %10d %8d %11d\n\n", "candidate", r.Candidate.Block, r.Candidate.Interrupt, r.Candidate.Grant, r.Candidate.NotApplied)
			fmt.Fprintf(w, "%d sign-ins would change outcome.\n", r.ChangedTotal)
			for _, u := range r.Users {
				fmt.Fprintf(w, "  %-40s blocked %d, challenged %d\n", u.UserPrincipalName, u.Blocked, u.Challenged)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringArrayVar(&policies, "policies", nil, "candidate policy file or directory (repeatable)")
	cmd.Flags().StringVar(&since, "since", "7d", "how far back to replay (e.g. 7d, 36h; at most 90d)")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}
