package directory

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

const minimalIDP = `{"displayName": "Contoso", "issuer": "https://login.microsoftonline.com/0f0e0d0c-0000-4000-8000-000000000001/v2.0", "clientId": "c0ffee00-0000-4000-8000-000000000001"`

func TestIdentityProviderDefaults(t *testing.T) {
	t.Parallel()
	p, err := IdentityProviders.Parse([]byte(minimalIDP + `, "domainHints": ["Contoso.COM"],
		"groupMappings": [{"claimValue": "b", "groupId": "` + strings.ToUpper(guidA) + `"}, {"claimValue": "a", "groupId": "` + guidB + `"}, {"claimValue": "b", "groupId": "` + guidA + `"}],
		"mfaClaim": {}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := ClaimsMapping{UserID: "sub", UserPrincipalName: "preferred_username", Email: "email", DisplayName: "name",
		GivenName: "given_name", Surname: "family_name", Groups: "groups"}
	if p.ODataType != ODataOpenIDConnectIdentityProvider || p.Scope != DefaultIdentityProviderScope || p.ResponseType != ResponseTypeCode ||
		p.ClaimsMapping == nil || *p.ClaimsMapping != want || p.JITProvisioning || p.MFAClaim != nil {
		t.Errorf("defaults: %+v, claims %+v", p, p.ClaimsMapping)
	}
	if !slices.Equal(p.DomainHints, []string{"contoso.com"}) || !p.ServesDomain("CONTOSO.com") || p.ServesDomain("fabrikam.com") {
		t.Errorf("domainHints = %v", p.DomainHints)
	}
	wantMaps := []GroupMapping{{"a", guidB}, {"b", guidA}}
	if !slices.Equal(p.GroupMappings, wantMaps) {
		t.Errorf("groupMappings = %v, want %v", p.GroupMappings, wantMaps)
	}
	if got := p.GroupsFor([]string{"b", "x", "a"}); !slices.Equal(got, []string{guidA, guidB}) {
		t.Errorf("GroupsFor = %v", got)
	}
	if got := p.MappedGroups(); !slices.Equal(got, []string{guidA, guidB}) {
		t.Errorf("MappedGroups = %v", got)
	}
	if p.Key() != "https://login.microsoftonline.com/0f0e0d0c-0000-4000-8000-000000000001/v2.0" {
		t.Errorf("key = %q", p.Key())
	}
	// Normalising again changes nothing.
	before := string(mustJSON(t, p))
	p.Normalize()
	if after := string(mustJSON(t, p)); after != before {
		t.Errorf("Normalize is not idempotent:\n%s\n%s", before, after)
	}
}

func TestIdentityProviderValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, extra, path, msg string
	}{
		{"http issuer", `"issuer": "http://login.contoso.com"`, "issuer", "must use https"},
		{"loopback http issuer", `"issuer": "http://127.0.0.1:8443/realms/x"`, "", ""},
		{"localhost issuer", `"issuer": "http://localhost:8080"`, "", ""},
		{"issuer with query", `"issuer": "https://login.contoso.com/?tenant=x"`, "issuer", "must not have a query"},
		{"discovery URL as issuer", `"issuer": "https://login.contoso.com/.well-known/openid-configuration"`, "issuer", "without /.well-known"},
		{"relative issuer", `"issuer": "login.contoso.com"`, "issuer", "absolute URL"},
		{"issuer with user", `"issuer": "https://u:p@login.contoso.com"`, "issuer", "user name"},
		{"ftp issuer", `"issuer": "ftp://login.contoso.com"`, "issuer", "must use https"},
		{"no client id", `"clientId": ""`, "clientId", "required"},
		{"client id with space", `"clientId": "a b"`, "clientId", "visible ASCII"},
		{"scope without openid", `"scope": "profile email"`, "scope", "must include openid"},
		{"scope with quote", `"scope": "openid \"x"`, "scope", "does not allow"},
		{"implicit flow", `"responseType": "id_token"`, "responseType", "authorization code"},
		{"empty claim", `"claimsMapping": {"userId": " "}`, "claimsMapping.userId", "claim name"},
		{"unknown claims mapping field", `"claimsMapping": {"phone": "x"}`, "claimsMapping.phone", "unknown"},
		{"group id not a GUID", `"groupMappings": [{"claimValue": "a", "groupId": "admins"}]`, "groupMappings[0].groupId", "GUID"},
		{"group mapping without value", `"groupMappings": [{"groupId": "` + guidA + `"}]`, "groupMappings[0].claimValue", "required"},
		{"bad domain", `"domainHints": ["contoso"]`, "domainHints[0]", "e-mail domain"},
		{"repeated domain", `"domainHints": ["contoso.com", "CONTOSO.com"]`, "domainHints[1]", "repeats"},
		{"empty amr value", `"mfaClaim": {"amrValues": [""]}`, "mfaClaim.amrValues[0]", "must not be empty"},
		{"other odata type", `"@odata.type": "#microsoft.graph.socialIdentityProvider"`, "@odata.type", "must be one of"},
		{"client secret in the object", `"clientSecret": "s3cret"`, "clientSecret", "unknown"},
		{"metadata URL", `"metadataUrl": "https://x/.well-known/openid-configuration"`, "metadataUrl", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := minimalIDP + `, ` + tt.extra + `}`
			// A later duplicate key wins in encoding/json; strictjson
			// checks the last one too.
			_, err := IdentityProviders.Parse([]byte(body))
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			var fe *strictjson.FieldError
			if !errors.As(err, &fe) || fe.Path != tt.path || !strings.Contains(fe.Message, tt.msg) {
				t.Fatalf("Parse = %v; want %s: ...%s...", err, tt.path, tt.msg)
			}
		})
	}
}

func TestMFAClaim(t *testing.T) {
	t.Parallel()
	var off *MFAClaim
	if off.Satisfied([]string{"mfa"}, "x") {
		t.Error("no rule trusted an amr of mfa")
	}
	r := &MFAClaim{AMRValues: []string{"mfa"}, ACRValues: []string{"urn:verity:acr:mfa"}}
	for _, tt := range []struct {
		amr  []string
		acr  string
		want bool
	}{
		{[]string{"pwd", "mfa"}, "", true},
		{[]string{"pwd"}, "urn:verity:acr:mfa", true},
		{[]string{"pwd"}, "urn:verity:acr:pwd", false},
		{nil, "", false},
		{[]string{"MFA"}, "", false},
	} {
		if got := r.Satisfied(tt.amr, tt.acr); got != tt.want {
			t.Errorf("Satisfied(%v, %q) = %v", tt.amr, tt.acr, got)
		}
	}
}

// fakeSealer seals with AES-GCM, binding purpose and id as the keyring does.
type fakeSealer struct{ aead cipher.AEAD }

func newFakeSealer(t *testing.T) *fakeSealer {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSealer{a}
}

func (f *fakeSealer) Seal(purpose, id string, plain []byte) ([]byte, error) {
	nonce := make([]byte, f.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return f.aead.Seal(nonce, nonce, plain, []byte(purpose+"\x00"+id)), nil
}

func (f *fakeSealer) Open(purpose, id string, sealed []byte) ([]byte, error) {
	n := f.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("short")
	}
	return f.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose+"\x00"+id))
}

func storeIDP(t *testing.T, st store.Store, id string) *IdentityProvider {
	t.Helper()
	p, err := IdentityProviders.Parse([]byte(minimalIDP + `, "id": "` + id + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	p.SetCreatedDateTime(time.Now())
	o := object(t, p)
	if _, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, o) }); err != nil {
		t.Fatal(err)
	}
	back, err := IdentityProviders.FromObject(o)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestIdentityProviderSecretLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openStore(t)
	sealer := newFakeSealer(t)
	p := storeIDP(t, st, guidA)
	const secret = "Qx8~very-secret-client-secret"

	if _, err := IdentityProviderSecret(ctx, st, sealer, p); !errors.Is(err, ErrNoClientSecret) {
		t.Fatalf("before any secret: %v", err)
	}
	if has, err := HasIdentityProviderSecret(ctx, st, p); has || err != nil {
		t.Fatalf("HasIdentityProviderSecret = %v, %v", has, err)
	}
	for _, bad := range []string{"", ClientSecretPlaceholder, "a\nb", strings.Repeat("x", 1025)} {
		var fe *strictjson.FieldError
		if err := SetIdentityProviderSecret(ctx, st, sealer, p, bad); !errors.As(err, &fe) || fe.Path != "clientSecret" {
			t.Errorf("secret %q: %v", bad, err)
		}
	}
	if err := SetIdentityProviderSecret(ctx, st, sealer, p, secret); err != nil {
		t.Fatal(err)
	}
	rec, err := st.GetRecord(ctx, KindIdentityProviderSecret, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.Body), secret) || strings.Contains(string(rec.Body), "very-secret") {
		t.Errorf("the record holds the secret in clear: %s", rec.Body)
	}
	if got, err := IdentityProviderSecret(ctx, st, sealer, p); got != secret || err != nil {
		t.Fatalf("IdentityProviderSecret = %q, %v", got, err)
	}
	// Sealed for this provider: another id cannot open it.
	other := *p
	other.ID = guidB
	if _, err := sealer.Open(sealPurposeIdentityProviderSecret, other.ID, mustSealed(t, rec.Body)); err == nil {
		t.Error("the sealed secret opened for another provider id")
	}
	// A provider made again with the same id does not inherit it.
	again := *p
	later := p.CreatedDateTime.Add(time.Second)
	again.CreatedDateTime = &later
	if _, err := IdentityProviderSecret(ctx, st, sealer, &again); !errors.Is(err, ErrNoClientSecret) {
		t.Errorf("a new registration with the same id got the secret: %v", err)
	}
	if err := RemoveIdentityProviderSecret(ctx, st, strings.ToUpper(p.ID)); err != nil {
		t.Fatal(err)
	}
	if err := RemoveIdentityProviderSecret(ctx, st, p.ID); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	if _, err := IdentityProviderSecret(ctx, st, sealer, p); !errors.Is(err, ErrNoClientSecret) {
		t.Errorf("after removal: %v", err)
	}
}

func mustSealed(t *testing.T, body []byte) []byte {
	t.Helper()
	var b idpSecretRecord
	if err := strictjson.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	return b.Sealed
}
