package apply

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// TestClientSecretsStayOutOfManifests: an application's client secrets
// live beside it, not in it. An export carries neither secret nor
// metadata, applying the export (or the manifest again) leaves the secrets
// working, and passwordCredentials in a manifest, as Graph prints them,
// are ignored.
func TestClientSecretsStayOutOfManifests(t *testing.T) {
	engines(t, func(t *testing.T, open func(t *testing.T) store.Store) {
		ctx := context.Background()
		st := open(t)
		apply(t, st, parse(t, exampleTenant), Options{})
		const appID = "3f9c7a52-6b1e-4d0a-9e8f-2c4b7d1a5e60"
		obj, err := st.GetByKey(ctx, directory.KindApplication, appID)
		if err != nil {
			t.Fatal(err)
		}
		app, err := directory.Applications.FromObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		cred, secret, err := directory.AddClientSecret(ctx, st, app, directory.PasswordCredentialRequest{DisplayName: "prod"})
		if err != nil {
			t.Fatal(err)
		}

		exported := export(t, st)
		for _, leak := range []string{secret, cred.KeyID, cred.Hint + "~", "passwordCredentials"} {
			if bytes.Contains(exported, []byte(leak)) {
				t.Errorf("the export holds %q", leak)
			}
		}
		if !bytes.Contains(exported, []byte("com.contoso.expenses:/oauth2redirect")) {
			t.Error("the export lost the OIDC client's redirect URIs")
		}
		m, err := Parse("export.yaml", exported)
		if err != nil {
			t.Fatal(err)
		}
		if p, _ := apply(t, st, m, Options{Prune: true}); !p.Empty() {
			t.Errorf("applying the export:\n%s", p)
		}

		// The example's apps.yaml with Graph's read-only metadata (and a
		// Graph-only web property) added to the OIDC client.
		apps, err := os.ReadFile(filepath.Join(exampleTenant, "apps.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		const anchor = "      homePageUrl: https://expenses.contoso.com/\n"
		if !bytes.Contains(apps, []byte(anchor)) {
			t.Fatalf("apps.yaml has no %q", anchor)
		}
		apps = bytes.Replace(apps, []byte(anchor), []byte(anchor+`      implicitGrantSettings: {enableIdTokenIssuance: false}
    passwordCredentials:
      - {keyId: 5d0f3a1e-7c2b-4e9d-a6f8-1b3c5e7d9f02, displayName: old, hint: abc, secretText: null}
`), 1)
		withMetadata := parse(t, copyExamples(t, map[string]string{"apps.yaml": string(apps)}))
		if p, _ := apply(t, st, withMetadata, Options{}); !p.Empty() {
			t.Errorf("passwordCredentials in a manifest changed something:\n%s", p)
		}
		if err := directory.VerifyClientSecret(ctx, st, appID, secret); err != nil {
			t.Errorf("after the applies the secret no longer verifies: %v", err)
		}
	})
}
