// Package layering holds the test that keeps Verity's package graph the
// shape docs/architecture.md describes: packages depend downward only, and
// third-party dependencies stay on a short, reviewed list.
package layering

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/verityhq/verity/"

// allowed lists, for each package, the Verity packages it may import.
// A package missing here fails the test: add it deliberately.
var allowed = map[string][]string{
	"cmd/verity":                   {"*"},
	"internal/api":                 {"internal/access", "internal/audit", "internal/detect", "internal/jit", "internal/pim", "internal/apply", "internal/geo", "internal/authn", "internal/config", "internal/decision", "internal/directory", "internal/rbac", "internal/signin", "internal/store", "internal/strictjson"},
	"internal/access":              {"internal/access/devicefilter", "internal/directory", "internal/store", "internal/strictjson"},
	"internal/access/devicefilter": {"internal/textfold"},
	"internal/textfold":            {},
	"internal/apply":               {"internal/access", "internal/directory", "internal/rbac", "internal/store", "internal/strictjson"},
	"internal/bootstrap":           {"internal/authn", "internal/directory", "internal/rbac", "internal/store"},
	"internal/decision":            {"internal/access", "internal/directory", "internal/jit", "internal/rbac", "internal/store"},
	"internal/directory":           {"internal/schedule", "internal/store", "internal/strictjson"},
	"internal/schedule":            {"internal/strictjson"},
	"internal/rbac":                {"internal/rbac/condition", "internal/schedule", "internal/strictjson"},
	"internal/rbac/condition":      {"internal/textfold"},
	"internal/authn":               {},
	"internal/signin":              {"internal/access", "internal/authn", "internal/decision", "internal/directory", "internal/rbac", "internal/store"},
	"internal/config":              {"internal/strictjson"},
	"internal/store":               {},
	"internal/audit":               {"internal/store"},
	"internal/detect":              {"internal/store", "internal/webhook"},
	"internal/pim":                 {"internal/directory", "internal/rbac", "internal/schedule", "internal/store", "internal/webhook"},
	"internal/jit":                 {"internal/schedule", "internal/store", "internal/strictjson"},
	"internal/webhook":             {},
	"internal/strictjson":          {},
	"internal/localca":             {},
	"internal/geo":                 {},
	"internal/keyring":             {"internal/store"},
	"internal/oidc":                {"internal/access", "internal/decision", "internal/directory", "internal/keyring", "internal/signin", "internal/store"},
	"internal/proxy":               {"internal/access", "internal/decision", "internal/directory", "internal/jit", "internal/keyring", "internal/signin", "internal/store"},
	"internal/version":             {},
	// Test-only packages.
	"internal/store/storetest": {"internal/store"},
	"internal/layering":        {},
	"bench/load":               {},
	"bench/snapshot":           {"internal/decision", "internal/directory", "internal/store"},
}

// thirdParty is the dependency budget of non-test code: every module path
// prefix a package may import outside the standard library.
var thirdParty = []string{
	"github.com/spf13/cobra",
	"github.com/jackc/pgx/v5",
	"modernc.org/sqlite",
	"github.com/prometheus/client_golang",
	"sigs.k8s.io/yaml",
	"github.com/google/uuid",
	"golang.org/x/crypto",
	"golang.org/x/term",
	"go.yaml.in/yaml/v2",                                       // multi-document YAML manifests (the parser under sigs.k8s.io/yaml)
	"github.com/pquerna/otp",                                   // TOTP codes and enrollment QR codes for second-factor sign-in
	"github.com/oschwald/maxminddb-golang/v2",                  // country of an IP for country named locations
	"github.com/go-jose/go-jose/v4",                            // JWK, JWKS and JWS for token-signing keys
	"github.com/go-webauthn/webauthn",                          // passkeys: WebAuthn registration and assertion ceremonies
	"github.com/zitadel/oidc/v3",                               // the OpenID Connect provider's protocol handling (op package), not hand-rolled
	"go.opentelemetry.io/otel/trace/noop",                      // zitadel/oidc's spans switched off: Verity exports no traces
	"github.com/coreos/go-oidc/v3",                             // federation: discovery, JWKS and ID token verification of external identity providers
	"golang.org/x/oauth2",                                      // federation: the authorization code exchange with PKCE at external identity providers
	"golang.org/x/time/rate",                                   // the proxy's rate limits: token buckets
	"github.com/transparency-dev/merkle",                       // the audit log's RFC 6962 Merkle tree: hashing, compact ranges, proofs
	"github.com/transparency-dev/formats",                      // the audit log's checkpoints in the C2SP tlog-checkpoint format
	"golang.org/x/mod/sumdb/note",                              // signed notes (Ed25519) that carry the checkpoints
	"github.com/leodido/go-syslog/v4",                          // the audit log's syslog sink: RFC 5424 messages
	"go.opentelemetry.io/proto/otlp",                           // the audit log's OTLP sink: OpenTelemetry log records
	"google.golang.org/protobuf",                               // encoding the OTLP records
	"github.com/standard-webhooks/standard-webhooks/libraries", // detection's and PIM's webhooks: Standard Webhooks signatures
}

type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

func TestPackagesDependDownward(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		rules, ok := allowed[name]
		if !ok {
			t.Errorf("package %s has no layering rule; add it to allowed with the packages it may import", name)
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module) {
				dep := strings.TrimPrefix(imp, module)
				if !slices.Contains(rules, "*") && !slices.Contains(rules, dep) {
					t.Errorf("%s imports %s, which the layering does not allow", name, dep)
				}
				continue
			}
			if !strings.Contains(strings.Split(imp, "/")[0], ".") {
				continue // standard library
			}
			if !slices.ContainsFunc(thirdParty, func(prefix string) bool { return imp == prefix || strings.HasPrefix(imp, prefix+"/") }) {
				t.Errorf("%s imports %s, outside the dependency budget", name, imp)
			}
		}
	}
}
