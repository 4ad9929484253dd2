package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/proxy"
)

// TestUpstreamMutualTLS: an https upstream that requires a client
// certificate is reached with the proxy's, verified against the roots
// configured; without the certificate, or trusting other roots, it is
// not reached.
func TestUpstreamMutualTLS(t *testing.T) {
	t.Parallel()
	proxyCert := clientCertificate(t, "verity-proxy")
	leaf, err := x509.ParseCertificate(proxyCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(leaf)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "mtls "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	up.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients}
	up.StartTLS()
	t.Cleanup(up.Close)
	roots := x509.NewCertPool()
	roots.AddCert(up.Certificate())

	for _, tt := range []struct {
		name string
		tls  *tls.Config
		want int
	}{
		{"the proxy's certificate and the upstream's root", &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{proxyCert}}, http.StatusOK},
		{"no client certificate", &tls.Config{RootCAs: roots}, http.StatusBadGateway},
		{"the system's roots", &tls.Config{Certificates: []tls.Certificate{proxyCert}}, http.StatusBadGateway},
	} {
		e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.UpstreamTLS = tt.tls }},
			func(r *directory.AppRoute) { r.To = []string{up.URL}; r.PublicPaths = []string{"/payroll/"} })
		resp, body := e.get(e.browser(), e.base+"/payroll/x", "Accept", "application/json")
		if resp.StatusCode != tt.want || (tt.want == http.StatusOK && body != "mtls verity-proxy") {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, body)
		}
	}
}
