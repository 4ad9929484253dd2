package apply

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

const idpManifest = `groups:
  - id: 11111111-0000-4000-8000-00000000e001
    displayName: Contoso admins
identityProviders:
  - displayName: Contoso Entra ID
    issuer: https://login.microsoftonline.com/0f0e0d0c-0000-4000-8000-0000000000a1/v2.0
    clientId: c0ffee00-0000-4000-8000-000000000001
    clientSecretFromEnv: CONTOSO_OIDC_SECRET
    claimsMapping: {userId: oid}
    groupMappings:
      - {claimValue: 6f0a1d2c-0000-4000-8000-00000000e001, groupId: 11111111-0000-4000-8000-00000000e001}
    jitProvisioning: true
    domainHints: [contoso.com]
`

func writeManifest(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "idp.yaml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newKeyring(t *testing.T, st store.Store) *keyring.Keyring {
	t.Helper()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	kr, err := keyring.Open(context.Background(), st, master, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestIdentityProviderSecretsFromTheEnvironment: a manifest file names the
// environment variable that holds a client secret; a secret written in
// the file is refused.
func TestIdentityProviderSecretsFromTheEnvironment(t *testing.T) {
	dir := writeManifest(t, idpManifest)
	t.Setenv("CONTOSO_OIDC_SECRET", "")
	if _, err := ParseFiles([]string{dir}); err == nil || !strings.Contains(err.Error(), "identityProviders[0].clientSecretFromEnv") ||
		!strings.Contains(err.Error(), "CONTOSO_OIDC_SECRET is not set") {
		t.Fatalf("unset variable: %v", err)
	}
	t.Setenv("CONTOSO_OIDC_SECRET", "Xy8Q~from-the-environment")
	m, err := ParseFiles([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.IdentityProviders) != 1 || m.IdentityProviders[0].ClientSecret != "Xy8Q~from-the-environment" || m.IdentityProviders[0].ClientSecretFromEnv != "" {
		t.Fatalf("parsed %+v", m.IdentityProviders)
	}
	literal := strings.Replace(idpManifest, "clientSecretFromEnv: CONTOSO_OIDC_SECRET", "clientSecret: Xy8Q~in-the-file", 1)
	_, err = ParseFiles([]string{writeManifest(t, literal)})
	if err == nil || !strings.Contains(err.Error(), "identityProviders[0].clientSecret") || strings.Contains(err.Error(), "in-the-file") {
		t.Fatalf("a secret in the file: %v", err)
	}
	bad := strings.Replace(idpManifest, "CONTOSO_OIDC_SECRET", "'not a name'", 1)
	if _, err := ParseFiles([]string{writeManifest(t, bad)}); err == nil || !strings.Contains(err.Error(), "must name an environment variable") {
		t.Fatalf("a bad variable name: %v", err)
	}
}

// TestIdentityProvidersApply: a provider and its sealed secret are created
// by an apply, an unchanged secret is no change, a new one is a change of
// clientSecret alone (no object write), exports carry no secret and apply
// unchanged, and pruning removes the provider with its secret.
func TestIdentityProvidersApply(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		kr := newKeyring(t, st)
		m, err := Parse("idp.yaml", []byte(strings.Replace(idpManifest, "    clientSecretFromEnv: CONTOSO_OIDC_SECRET\n", "", 1)))
		if err != nil {
			t.Fatal(err)
		}
		m.IdentityProviders[0].ClientSecret = "Xy8Q~first-secret" // as the API receives it
		opts := Options{Sealer: kr}

		// Without a keyring a secret is refused, and nothing is written.
		if _, _, err := Apply(ctx, st, m, Options{}); err == nil || !strings.Contains(err.Error(), "identityProviders[0].clientSecret") {
			t.Fatalf("apply without a keyring: %v", err)
		}
		plan, _ := apply(t, st, m, opts)
		if s := plan.String(); !strings.Contains(s, `+ create identityProvider "Contoso Entra ID"`) || strings.Contains(s, "first-secret") {
			t.Fatalf("plan:\n%s", s)
		}
		obj, err := st.GetByKey(ctx, directory.KindIdentityProvider, m.IdentityProviders[0].Issuer)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(obj.Body, []byte("first-secret")) || bytes.Contains(obj.Body, []byte("clientSecret")) {
			t.Fatalf("the object holds the secret: %s", obj.Body)
		}
		idp, _ := directory.IdentityProviders.FromObject(obj)
		if got, err := directory.IdentityProviderSecret(ctx, st, kr, idp); got != "Xy8Q~first-secret" || err != nil {
			t.Fatalf("stored secret %q, %v", got, err)
		}
		if plan, _ := apply(t, st, m, opts); !plan.Empty() {
			t.Errorf("the same manifest again:\n%s", plan)
		}
		m.IdentityProviders[0].ClientSecret = directory.ClientSecretPlaceholder
		if plan, _ := apply(t, st, m, opts); !plan.Empty() {
			t.Errorf("the placeholder:\n%s", plan)
		}
		m.IdentityProviders[0].ClientSecret = "Xy8Q~second-secret"
		plan, _ = apply(t, st, m, opts)
		if s := plan.String(); !strings.Contains(s, `~ update identityProvider "Contoso Entra ID" (clientSecret)`) {
			t.Fatalf("plan:\n%s", s)
		}
		if again, _ := st.Get(ctx, directory.KindIdentityProvider, obj.ID); again.Revision != obj.Revision {
			t.Error("a change of the secret alone rewrote the object")
		}
		if got, _ := directory.IdentityProviderSecret(ctx, st, kr, idp); got != "Xy8Q~second-secret" {
			t.Errorf("the secret is %q after the update", got)
		}

		exported := export(t, st)
		if !bytes.Contains(exported, []byte("identityProviders:")) || bytes.Contains(exported, []byte("secret")) {
			t.Fatalf("export:\n%s", exported)
		}
		back, err := Parse("export.yaml", exported)
		if err != nil {
			t.Fatal(err)
		}
		if plan, _ := apply(t, st, back, opts); !plan.Empty() {
			t.Errorf("applying the export:\n%s", plan)
		}
		if got, _ := directory.IdentityProviderSecret(ctx, st, kr, idp); got != "Xy8Q~second-secret" {
			t.Errorf("the export's apply changed the secret to %q", got)
		}

		// Pruning deletes the provider and its secret.
		plan, _ = apply(t, st, &Manifest{Groups: m.Groups}, Options{Prune: true, Sealer: kr})
		if s := plan.String(); !strings.Contains(s, `- delete identityProvider "Contoso Entra ID"`) {
			t.Fatalf("prune plan:\n%s", s)
		}
		if _, err := st.GetRecord(ctx, directory.KindIdentityProviderSecret, obj.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the secret outlived its provider: %v", err)
		}
	})
}

func TestIdentityProviderPlanErrors(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	kr := newKeyring(t, st)
	base, err := Parse("idp.yaml", []byte(strings.Replace(idpManifest, "    clientSecretFromEnv: CONTOSO_OIDC_SECRET\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want string
		mut        func(m *Manifest)
	}{
		{"unknown group", "identityProviders[0].groupMappings[0].groupId: no group with id 99999999-0000-4000-8000-000000000001", func(m *Manifest) {
			m.IdentityProviders[0].GroupMappings[0].GroupID = "99999999-0000-4000-8000-000000000001"
		}},
		{"two providers, one domain", "identityProviders[1].domainHints[0]: domain contoso.com is routed to identity provider \"Contoso Entra ID\" too", func(m *Manifest) {
			other := m.IdentityProviders[0]
			other.ID, other.DisplayName, other.Issuer, other.GroupMappings = "", "Other", "https://idp.fabrikam.com", nil
			m.IdentityProviders = append(m.IdentityProviders, other)
		}},
		{"variable on the server", "identityProviders[0].clientSecretFromEnv: is read by verity apply", func(m *Manifest) {
			m.IdentityProviders[0].ClientSecretFromEnv = "CONTOSO_OIDC_SECRET"
		}},
		{"bad secret", "identityProviders[0].clientSecret: must not contain control characters", func(m *Manifest) {
			m.IdentityProviders[0].ClientSecret = "a\tb"
		}},
		{"http issuer", "identityProviders[0].issuer: must use https", func(m *Manifest) {
			m.IdentityProviders[0].Issuer = "http://login.contoso.com"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := *base
			m.IdentityProviders = append([]IdentityProvider(nil), base.IdentityProviders...)
			m.IdentityProviders[0].GroupMappings = append([]directory.GroupMapping(nil), base.IdentityProviders[0].GroupMappings...)
			tt.mut(&m)
			_, _, err := Apply(context.Background(), st, &m, Options{Sealer: kr})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply = %v; want %q", err, tt.want)
			}
		})
	}
}
