package localca

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsure(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	f, err := Ensure(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(f.CACert)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		if _, err := pair.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("certificate does not verify for %s: %v", host, err)
		}
	}
	for _, key := range []string{f.ServerKey, filepath.Join(dir, "ca-key.pem")} {
		if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", key, fi.Mode(), err)
		}
	}

	// A second call keeps everything; a new host reissues the server
	// certificate under the same CA.
	again, err := Ensure(dir, []string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	samePair, _ := tls.LoadX509KeyPair(again.ServerCert, again.ServerKey)
	if !samePair.Leaf.Equal(pair.Leaf) {
		t.Error("certificate reissued without need")
	}
	if _, err := Ensure(dir, []string{"localhost", "127.0.0.1", "verity.test"}); err != nil {
		t.Fatal(err)
	}
	newPair, _ := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if newPair.Leaf.Equal(pair.Leaf) {
		t.Fatal("new host did not reissue the certificate")
	}
	if _, err := newPair.Leaf.Verify(x509.VerifyOptions{DNSName: "verity.test", Roots: pool}); err != nil {
		t.Fatalf("reissued certificate not under the same CA: %v", err)
	}
}
