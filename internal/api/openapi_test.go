package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/verityhq/verity/internal/api"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/store/storetest"
)

const openAPIFile = "../../docs/openapi.yaml"

// openAPIOperation is the part of an OpenAPI operation the test checks.
type openAPIOperation struct {
	OperationID string `json:"operationId"`
	// AuditAction is the route's audit name where it cannot be the
	// operationId because several routes share it.
	AuditAction string             `json:"x-audit-action"`
	Description string             `json:"description"`
	Security    *[]json.RawMessage `json:"security"`
	Parameters  []openAPIParameter `json:"parameters"`
}

type openAPIParameter struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPISpec struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Security   []json.RawMessage                     `json:"security"`
	Components struct {
		Parameters map[string]openAPIParameter `json:"parameters"`
	} `json:"components"`
}

var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// goPatternToOpenAPI turns a ServeMux pattern (without method) into an
// OpenAPI path: both write wildcards as {name}; Go's {name...} and a
// trailing {$} have no OpenAPI spelling and become {name} and nothing.
func goPatternToOpenAPI(pattern string) string {
	p := strings.TrimSuffix(pattern, "{$}")
	return strings.ReplaceAll(p, "...}", "}")
}

var pathParam = regexp.MustCompile(`\{([^}/]+)\}`)

// accessLine is the sentence each operation's description must carry for
// its access level.
func accessLine(p api.Perm) string {
	switch {
	case p.Public:
		return "Access: public (no token)."
	case p.AuthOnly:
		return "Access: any signed-in principal; no role needed."
	}
	return "Access: permission `" + p.Action + "` at scope `" + p.Scope + "`."
}

func readOpenAPI(t *testing.T) *openAPISpec {
	t.Helper()
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	var spec openAPISpec
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("parse %s: %v", openAPIFile, err)
	}
	if spec.OpenAPI != "3.0.3" {
		t.Fatalf("%s: openapi = %q; want 3.0.3", openAPIFile, spec.OpenAPI)
	}
	return &spec
}

func routesOfNewServer(t *testing.T) []api.Route {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := storetest.OpenSQLite(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	live, err := decision.NewLive(ctx, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	s := api.New(api.Options{Store: st, Live: live, Logger: log, Registry: prometheus.NewRegistry(),
		HTTP: cfg.HTTP, Auth: cfg.Auth, Version: "test"})
	return s.Routes()
}

// TestOpenAPIMatchesRoutes fails when a route is not documented in
// docs/openapi.yaml, when the document describes an operation no route
// serves, or when an operation's id, access or path parameters disagree
// with the route table.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	spec := readOpenAPI(t)
	routes := routesOfNewServer(t)
	if len(routes) == 0 {
		t.Fatal("the server registers no routes")
	}

	// Every documented operation, by "METHOD /path".
	ops := map[string]openAPIOperation{}
	ids := map[string]string{}
	for path, item := range spec.Paths {
		var pathParams []openAPIParameter
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &pathParams); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		for key, raw := range item {
			if !slices.Contains(openAPIMethods, key) {
				continue
			}
			op := strings.ToUpper(key) + " " + path
			var o openAPIOperation
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatalf("%s: %v", op, err)
			}
			ops[op] = o
			if o.OperationID == "" {
				t.Errorf("%s: no operationId", op)
			} else if other, dup := ids[o.OperationID]; dup {
				t.Errorf("%s and %s share operationId %q", op, other, o.OperationID)
			}
			ids[o.OperationID] = op
			checkPathParams(t, spec, op, path, append(slices.Clone(pathParams), o.Parameters...))
		}
	}
	if len(spec.Security) == 0 {
		t.Error("no global security requirement")
	}

	served := map[string]bool{}
	for _, rt := range routes {
		op := rt.Method + " " + goPatternToOpenAPI(rt.Pattern)
		served[op] = true
		o, ok := ops[op]
		if !ok {
			t.Errorf("route %s (%q) is not documented in %s", op, rt.Name, openAPIFile)
			continue
		}
		switch {
		case rt.Name == "":
			// healthz, readyz, metrics: no audit name to match.
		case o.AuditAction != "":
			if o.AuditAction != rt.Name {
				t.Errorf("%s: x-audit-action %q; the route's name is %q", op, o.AuditAction, rt.Name)
			}
		case o.OperationID != rt.Name:
			t.Errorf("%s: operationId %q; the route's name is %q", op, o.OperationID, rt.Name)
		}
		public := o.Security != nil && len(*o.Security) == 0
		if public != rt.Perm.Public {
			t.Errorf("%s: public in the document = %v (security: []); the route's access is %+v", op, public, rt.Perm)
		}
		if want := accessLine(rt.Perm); !strings.Contains(o.Description, want) {
			t.Errorf("%s: the description does not say %q", op, want)
		}
	}
	for op := range ops {
		if !served[op] {
			t.Errorf("%s documents %s, which no route serves", openAPIFile, op)
		}
	}
}

// checkPathParams checks that the path's {names} and its in: path
// parameters are the same set.
func checkPathParams(t *testing.T, spec *openAPISpec, op, path string, params []openAPIParameter) {
	t.Helper()
	var declared []string
	for _, p := range params {
		if ref, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
			c, found := spec.Components.Parameters[ref]
			if !found {
				t.Errorf("%s: parameter $ref %q resolves to nothing", op, p.Ref)
				continue
			}
			p = c
		}
		if p.In == "path" {
			declared = append(declared, p.Name)
		}
	}
	var inPath []string
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		inPath = append(inPath, m[1])
	}
	slices.Sort(declared)
	slices.Sort(inPath)
	if !slices.Equal(declared, inPath) {
		t.Errorf("%s: path parameters %v; the path has %v", op, declared, inPath)
	}
}

func TestGoPatternToOpenAPI(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/api/v1/users/{id}":                        "/api/v1/users/{id}",
		"/api/v1/groups/{id}/members/{member}/$ref": "/api/v1/groups/{id}/members/{member}/$ref",
		"/files/{path...}":                          "/files/{path}",
		"/{$}":                                      "/",
	} {
		if got := goPatternToOpenAPI(in); got != want {
			t.Errorf("goPatternToOpenAPI(%q) = %q; want %q", in, got, want)
		}
	}
}
