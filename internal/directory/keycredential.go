package directory

import (
	"crypto/sha1" //nolint:gosec // Graph's customKeyIdentifier is the SHA-1 thumbprint; matching uses SHA-256
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// Graph's values of a certificate credential.
const (
	KeyTypeX509Cert = "AsymmetricX509Cert"
	KeyUsageVerify  = "Verify"
	maxKeyCreds     = 20
	maxCertBytes    = 16 << 10
)

// KeyCredential is Graph's keyCredential on an application: a certificate
// the application proves itself with — at Verity's proxy, as a TLS client
// certificate (its private key never leaves the application). Key is the
// certificate, DER in standard base64, as Graph takes it; Graph does not
// return it on reads, so an export imports without it (such an entry is
// dropped: there is nothing left to verify).
type KeyCredential struct {
	KeyID       string `json:"keyId,omitempty"` // assigned when empty
	DisplayName string `json:"displayName,omitempty"`
	Type        string `json:"type,omitempty"`  // AsymmetricX509Cert (the default)
	Usage       string `json:"usage,omitempty"` // Verify (the default)
	Key         string `json:"key,omitempty"`
	// CustomKeyIdentifier is the certificate's SHA-1 thumbprint in base64,
	// as Graph shows it; set from Key.
	CustomKeyIdentifier string `json:"customKeyIdentifier,omitempty"`
	// StartDateTime and EndDateTime bound when the credential works;
	// they default to the certificate's validity.
	StartDateTime *time.Time `json:"startDateTime,omitempty"`
	EndDateTime   *time.Time `json:"endDateTime,omitempty"`
}

// Certificate parses Key.
func (k *KeyCredential) Certificate() (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(k.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// ValidAt reports whether the credential works at t.
func (k *KeyCredential) ValidAt(t time.Time) bool {
	return (k.StartDateTime == nil || !t.Before(*k.StartDateTime)) && (k.EndDateTime == nil || t.Before(*k.EndDateTime))
}

// CertificateKey is the index key of a certificate: the SHA-256 of its DER.
func CertificateKey(der []byte) [32]byte { return sha256.Sum256(der) }

// normalizeKeyCredentials drops entries without a key, fills the defaults
// and what the certificate says (thumbprint, validity), and assigns key
// ids. It is idempotent.
func normalizeKeyCredentials(ks []KeyCredential) []KeyCredential {
	out := ks[:0]
	for _, k := range ks {
		if k.Key == "" {
			continue
		}
		k.KeyID = lowerGUID(k.KeyID)
		if k.KeyID == "" {
			k.KeyID = NewID()
		}
		if k.Type == "" {
			k.Type = KeyTypeX509Cert
		}
		if k.Usage == "" {
			k.Usage = KeyUsageVerify
		}
		if c, err := k.Certificate(); err == nil {
			sum := sha1.Sum(c.Raw) //nolint:gosec // a display thumbprint, as Graph's
			k.CustomKeyIdentifier = base64.StdEncoding.EncodeToString(sum[:])
			if k.StartDateTime == nil {
				t := c.NotBefore.UTC()
				k.StartDateTime = &t
			}
			if k.EndDateTime == nil {
				t := c.NotAfter.UTC()
				k.EndDateTime = &t
			}
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func checkKeyCredentials(path string, ks []KeyCredential) error {
	if len(ks) > maxKeyCreds {
		return strictjson.Errorf(path, "at most %d key credentials", maxKeyCreds)
	}
	seen := map[[32]byte]bool{}
	for i, k := range ks {
		p := strictjson.Index(path, i)
		if err := firstError(checkGUID(p+".keyId", k.KeyID), checkText(p+".displayName", k.DisplayName, maxShortText),
			checkEnum(p+".type", k.Type, KeyTypeX509Cert), checkEnum(p+".usage", k.Usage, KeyUsageVerify)); err != nil {
			return err
		}
		if len(k.Key) > maxCertBytes*4/3+4 {
			return strictjson.Errorf(p+".key", "is too long for a certificate")
		}
		c, err := k.Certificate()
		if err != nil {
			return strictjson.Errorf(p+".key", "must be an X.509 certificate, DER in standard base64: %v", err)
		}
		if k.StartDateTime != nil && k.EndDateTime != nil && !k.StartDateTime.Before(*k.EndDateTime) {
			return strictjson.Errorf(p+".endDateTime", "must be after startDateTime")
		}
		ck := CertificateKey(c.Raw)
		if seen[ck] {
			return strictjson.Errorf(p+".key", "the same certificate is listed twice")
		}
		seen[ck] = true
	}
	return nil
}
