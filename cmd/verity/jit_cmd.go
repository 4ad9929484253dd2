package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/jit"
)

// newJITCmd is just-in-time network access from the command line
// (docs/jit.md).
func newJITCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jit",
		Short: "Just-in-time network access: policies that close ports, requests that open them",
	}
	cmd.AddCommand(jitPoliciesCmd(), jitPutCmd(), jitDeleteCmd(), jitRequestCmd(), jitRequestsCmd(), jitRevokeCmd())
	return cmd
}

func jitPoliciesCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "policies [NAME]",
		Short: "List the policies you may read, or show one with its requests (JSON)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				var p json.RawMessage
				if err := c.do(cmd.Context(), "GET", "/api/v1/jit/policies/"+url.PathEscape(args[0]), nil, &p); err != nil {
					return err
				}
				return printIndented(cmd, p)
			}
			var page struct{ Value []jit.Policy }
			if err := c.do(cmd.Context(), "GET", "/api/v1/jit/policies", nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POLICY\tRESOURCE\tPORT\tPROTOCOL\tSOURCES\tMAX")
			for _, p := range page.Value {
				for _, r := range p.Properties.VirtualMachines {
					for _, pt := range r.Ports {
						sources := pt.AllowedSourceAddressPrefix
						if sources == "" {
							sources = strings.Join(pt.AllowedSourceAddressPrefixes, ",")
						}
						fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", p.Name, r.ID, pt.Number, pt.Protocol, sources, pt.MaxRequestAccessDuration.D())
					}
				}
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	return cmd
}

func printIndented(cmd *cobra.Command, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return err
}

func jitPutCmd() *cobra.Command {
	var f clientFlags
	var file string
	cmd := &cobra.Command{
		Use:   "put NAME --file POLICY.json",
		Short: "Create or replace a policy from Defender's jitNetworkAccessPolicy JSON",
		Long: `Put writes a policy in Defender for Cloud's jitNetworkAccessPolicy shape:
{"kind": "Basic", "properties": {"virtualMachines": [{"id": "/apps/{appId}",
"ports": [{"number": 443, "protocol": "*", "allowedSourceAddressPrefix": "*",
"maxRequestAccessDuration": "PT3H"}]}]}}. The ports it names are then closed to
everyone without an open request.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readJSONFile(file)
			if err != nil {
				return err
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var p jit.Policy
			if err := c.do(cmd.Context(), "PUT", "/api/v1/jit/policies/"+url.PathEscape(args[0]), body, &p); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %s: %d resources protected\n", p.Name, len(p.Properties.VirtualMachines))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&file, "file", "", "the policy JSON")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// readJSONFile reads a JSON document from a file, bounded, and checks it
// is JSON before it is sent.
func readJSONFile(name string) (json.RawMessage, error) {
	b, err := readLimited(name)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s: not valid JSON", name)
	}
	return json.RawMessage(b), nil
}

func jitDeleteCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Remove a policy (its ports are no longer closed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "DELETE", "/api/v1/jit/policies/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "policy %s removed\n", args[0])
			return nil
		},
	}
	f.register(cmd)
	return cmd
}

func jitRequestCmd() *cobra.Command {
	var f clientFlags
	var policy, resource, source, justification string
	var ports []int
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "request --policy NAME --resource ID --port N [--port N] [--duration 1h] [--source ADDRESS] --justification TEXT",
		Short: "Open protected ports to your address (or a source you name) for a while",
		Long: `Request opens ports a just-in-time policy closes, for your own address as the
server sees it (or --source, an address or CIDR range inside the port's allowed
sources), until --duration from now (at most the port's maximum). Your earlier
request for the same port is replaced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			end := time.Now().Add(duration).UTC()
			in := jit.InitiateRequest{Justification: justification, VirtualMachines: []jit.InitiateResource{{ID: resource}}}
			for _, n := range ports {
				in.VirtualMachines[0].Ports = append(in.VirtualMachines[0].Ports, jit.InitiatePort{Number: n, EndTimeUtc: end, AllowedSourceAddressPrefix: source})
			}
			var q jit.Request
			if err := c.do(cmd.Context(), "POST", "/api/v1/jit/policies/"+url.PathEscape(policy)+"/initiate", in, &q); err != nil {
				return err
			}
			printJITRequest(cmd, q)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&policy, "policy", "", "the policy protecting the resource")
	cmd.Flags().StringVar(&resource, "resource", "", "the resource (e.g. /apps/{appId})")
	cmd.Flags().IntSliceVar(&ports, "port", nil, "a port to open (repeatable)")
	cmd.Flags().DurationVar(&duration, "duration", time.Hour, "how long (at most the port's maximum)")
	cmd.Flags().StringVar(&source, "source", "", "the source address or range (default: yours)")
	cmd.Flags().StringVar(&justification, "justification", "", "why")
	for _, name := range []string{"policy", "resource", "port"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func printJITRequest(cmd *cobra.Command, q jit.Request) {
	fmt.Fprintf(cmd.OutOrStdout(), "request %s by %s\n", q.ID, q.Requestor)
	for _, vm := range q.VirtualMachines {
		for _, p := range vm.Ports {
			src := p.AllowedSourceAddressPrefix
			if src == "" {
				src = strings.Join(p.AllowedSourceAddressPrefixes, ",")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "  %s port %d from %s: %s (%s) until %s\n", vm.ID, p.Number, src, p.Status, p.StatusReason, p.EndTimeUtc.Format(time.RFC3339))
		}
	}
}

func jitRequestsCmd() *cobra.Command {
	var f clientFlags
	var open bool
	var policy string
	cmd := &cobra.Command{
		Use:   "requests [--open] [--policy NAME]",
		Short: "List your requests and those on resources whose policies you may read",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			q := url.Values{}
			if open {
				q.Set("open", "true")
			}
			if policy != "" {
				q.Set("policy", policy)
			}
			var page struct{ Value []jit.Request }
			if err := c.do(cmd.Context(), "GET", "/api/v1/jit/requests?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tREQUESTOR\tRESOURCE\tPORT\tSOURCE\tSTATUS\tEND")
			for _, r := range page.Value {
				for _, vm := range r.VirtualMachines {
					for _, p := range vm.Ports {
						src := p.AllowedSourceAddressPrefix
						if src == "" {
							src = strings.Join(p.AllowedSourceAddressPrefixes, ",")
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s/%s\t%s\n", r.ID, r.Requestor, vm.ID, p.Number, src, p.Status, p.StatusReason, p.EndTimeUtc.Format(time.RFC3339))
					}
				}
			}
			return tw.Flush()
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&open, "open", false, "only requests with a port open now")
	cmd.Flags().StringVar(&policy, "policy", "", "only this policy's")
	return cmd
}

func jitRevokeCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Close a request's open ports now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var q jit.Request
			if err := c.do(cmd.Context(), "POST", "/api/v1/jit/requests/"+url.PathEscape(args[0])+"/revoke", nil, &q); err != nil {
				return err
			}
			printJITRequest(cmd, q)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
