package directory

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// selfSigned makes a certificate as an application would for its
// credential, and returns its DER.
func selfSigned(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestKeyCredentials(t *testing.T) {
	t.Parallel()
	der := selfSigned(t, "payroll-batch")
	a := &Application{ID: guidA, AppID: guidB, DisplayName: "Payroll", KeyCredentials: []KeyCredential{
		{DisplayName: "batch", Key: base64.StdEncoding.EncodeToString(der)},
		{DisplayName: "as Graph exports it, without the key", Type: KeyTypeX509Cert},
	}}
	a.Normalize()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(a.KeyCredentials) != 1 {
		t.Fatalf("an entry without a key was kept: %+v", a.KeyCredentials)
	}
	k := a.KeyCredentials[0]
	if !IsGUID(k.KeyID) || k.Type != KeyTypeX509Cert || k.Usage != KeyUsageVerify || k.CustomKeyIdentifier == "" || k.StartDateTime == nil || k.EndDateTime == nil {
		t.Fatalf("normalised to %+v", k)
	}
	again := *a
	again.KeyCredentials = append([]KeyCredential(nil), a.KeyCredentials...)
	again.Normalize()
	if again.KeyCredentials[0] != a.KeyCredentials[0] {
		t.Fatal("Normalize is not idempotent")
	}
	if !k.ValidAt(time.Now()) || k.ValidAt(time.Now().Add(48*time.Hour)) {
		t.Error("validity from the certificate")
	}

	for _, tt := range []struct {
		path string
		k    KeyCredential
	}{
		{"keyCredentials[0].key", KeyCredential{Key: "bm90IGEgY2VydA=="}},
		{"keyCredentials[0].key", KeyCredential{Key: "%%%"}},
		{"keyCredentials[0].type", KeyCredential{Key: k.Key, Type: "Symmetric"}},
		{"keyCredentials[0].usage", KeyCredential{Key: k.Key, Usage: "Sign"}},
		{"keyCredentials[1].key", KeyCredential{Key: k.Key, KeyID: "00000000-0000-4000-8000-000000000009"}},
	} {
		b := &Application{ID: guidA, AppID: guidB, DisplayName: "Payroll", KeyCredentials: []KeyCredential{tt.k}}
		if tt.path == "keyCredentials[1].key" {
			b.KeyCredentials = []KeyCredential{{Key: k.Key}, tt.k}
		}
		b.Normalize()
		if err := b.Validate(); err == nil || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%+v: %v, want an error at %s", tt.k, err, tt.path)
		}
	}

	// The snapshot finds the application by the certificate, exactly.
	o, err := Applications.Object(a)
	if err != nil {
		t.Fatal(err)
	}
	s := buildFromStore(t, []store.Object{o})
	if app, cred, ok := s.ApplicationByCertificate(der); !ok || app.AppID != guidB || cred.KeyID != k.KeyID {
		t.Fatalf("by certificate: %v %v %v", app, cred, ok)
	}
	if _, _, ok := s.ApplicationByCertificate(selfSigned(t, "payroll-batch")); ok {
		t.Fatal("another certificate with the same name found the application")
	}
}
