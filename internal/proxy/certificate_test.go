package proxy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// clientCertificate makes a self-signed certificate and its key, as an
// application makes one for its certificate credential.
func clientCertificate(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func appWithCertificate(t *testing.T, id, appID, name string, cert tls.Certificate, end *time.Time) store.Object {
	t.Helper()
	a := &directory.Application{ID: id, AppID: appID, DisplayName: name, KeyCredentials: []directory.KeyCredential{
		{DisplayName: name + " batch", Key: base64.StdEncoding.EncodeToString(cert.Certificate[0]), EndDateTime: end}}}
	a.Normalize()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	return must(t)(directory.Applications.Object(a))
}

// TestClientCertificates: an application proves itself with the TLS
// client certificate its key credentials list; it is decided as its
// service principal on every request. Another application's certificate
// needs a role at this one; an unknown or expired one is no credential.
func TestClientCertificates(t *testing.T) {
	t.Parallel()
	payrollCert, otherCert, strayCert, expiredCert := clientCertificate(t, "payroll"), clientCertificate(t, "other"),
		clientCertificate(t, "stray"), clientCertificate(t, "expired")
	past := time.Now().Add(-time.Minute)
	otherSP := &directory.ServicePrincipal{ID: "5e000000-0000-4000-8000-000000000002", AppID: "9a700000-0000-4000-8000-000000000002", DisplayName: "Other"}
	otherSP.Normalize()
	oldSP := &directory.ServicePrincipal{ID: "5e000000-0000-4000-8000-000000000003", AppID: "9a700000-0000-4000-8000-000000000003", DisplayName: "Old"}
	oldSP.Normalize()
	e := newNode(t, nodeOptions{clientCerts: true}, nil,
		appWithCertificate(t, "a0000000-0000-4000-8000-00000000a002", otherSP.AppID, "Other", otherCert, nil), must(t)(directory.ServicePrincipals.Object(otherSP)),
		appWithCertificate(t, "a0000000-0000-4000-8000-00000000a003", oldSP.AppID, "Old", expiredCert, &past), must(t)(directory.ServicePrincipals.Object(oldSP)))
	// The payroll application (made by newNode) lists its certificate.
	e.write(appWithCertificate(t, "a0000000-0000-4000-8000-00000000a001", appID, "Payroll", payrollCert, nil))

	with := func(cert tls.Certificate) *http.Client {
		c := noRedirects(e.browser())
		c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{cert}
		return c
	}
	resp, body := e.get(with(payrollCert), e.base+"/payroll/api/runs", "Accept", "application/json")
	if resp.StatusCode != http.StatusOK || body != "upstream /internal/api/runs" {
		t.Fatalf("the application's own certificate: %d %s", resp.StatusCode, body)
	}
	payload, _, err := e.kr.Verify(t.Context(), e.lastSeen().Header.Get("X-Verity-Assertion"))
	var claims map[string]any
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims["sub"] != spID {
		t.Fatalf("assertion for a certificate: %v %v", claims, err)
	}
	e.decisionMatching(func(m map[string]any) bool { return m["credential"] == "certificate" })
	// Another application's certificate: it has no role at payroll.
	if resp, body := e.get(with(otherCert), e.base+"/payroll/api/runs", "Accept", "application/json"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "50105") {
		t.Errorf("another application's certificate: %d %s", resp.StatusCode, body)
	}
	// Unknown and expired certificates are no credential: sign in.
	for name, cert := range map[string]tls.Certificate{"unknown": strayCert, "expired credential": expiredCert} {
		if resp, body := e.get(with(cert), e.base+"/payroll/api/runs", "Accept", "application/json"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s certificate: %d %s", name, resp.StatusCode, body)
		}
	}
}
