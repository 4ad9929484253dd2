// Package localca makes the TLS material for a first look at Verity: a
// private CA and a server certificate it signs, kept in the data
// directory, so `verity up` serves HTTPS with nothing to configure and
// clients trust exactly that CA. Production uses real certificate files.
package localca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files names the PEM files Ensure keeps.
type Files struct {
	CACert     string // trust this in clients
	ServerCert string
	ServerKey  string
}

// Ensure returns the CA and server certificate in dir, creating them when
// missing and renewing the server certificate when it expires within 30
// days. hosts are DNS names or IP addresses for the certificate.
func Ensure(dir string, hosts []string) (Files, error) {
	f := Files{
		CACert:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
	}
	caKeyFile := filepath.Join(dir, "ca-key.pem")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return f, fmt.Errorf("create tls directory: %w", err)
	}
	caCert, caKey, err := loadPair(f.CACert, caKeyFile)
	if errors.Is(err, os.ErrNotExist) {
		caCert, caKey, err = newCA(f.CACert, caKeyFile)
	}
	if err != nil {
		return f, err
	}
	if leaf, _, err := loadPair(f.ServerCert, f.ServerKey); err == nil && time.Until(leaf.NotAfter) > 30*24*time.Hour && coversHosts(leaf, hosts) {
		return f, nil
	}
	return f, newServerCert(f, caCert, caKey, hosts)
}

func coversHosts(c *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if strings.HasPrefix(h, "*.") {
			h = "any" + h[1:] // a wildcard covers one label
		}
		if c.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func loadPair(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if _, statErr := os.Stat(certFile); errors.Is(statErr, os.ErrNotExist) {
			return nil, nil, os.ErrNotExist
		}
		return nil, nil, fmt.Errorf("load %s: %w", certFile, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: key is not ECDSA", keyFile)
	}
	return pair.Leaf, key, nil
}

func newCA(certFile, keyFile string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Verity local CA", Organization: []string{"Verity"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writePEM(keyFile, key, nil); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certFile, nil, der); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func newServerCert(f Files, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "Verity"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	if err := writePEM(f.ServerKey, key, nil); err != nil {
		return err
	}
	return writePEM(f.ServerCert, nil, der)
}

// writePEM writes a key (mode 0600) or a certificate (0644) atomically.
func writePEM(path string, key *ecdsa.PrivateKey, certDER []byte) error {
	block := &pem.Block{Type: "CERTIFICATE", Bytes: certDER}
	mode := os.FileMode(0o644)
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return fmt.Errorf("encode key: %w", err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		mode = 0o600
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(block), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
