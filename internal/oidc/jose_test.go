package oidc_test

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestJoseVerifiesIDToken has the npm jose library, in Node.js, read
// Verity's discovery document and JWKS over TLS and verify an ID token, as
// a JavaScript relying party would. It installs the pinned jose from
// testdata/jose/package-lock.json (npm ci) into a temporary folder, unless
// testdata/jose/node_modules is there already.
func TestJoseVerifiesIDToken(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: install nodejs and npm (apt-get install nodejs npm) to run the jose interoperability test")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "jose"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "jose")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Fatal("npm is not installed: install nodejs and npm (apt-get install nodejs npm) to run the jose interoperability test")
		}
		tmp := t.TempDir()
		for _, f := range []string{"package.json", "package-lock.json", "verify.mjs"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tmp, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = tmp
		cmd.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(tmp, ".npm"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci: %v\n%s", err, out)
		}
		dir = tmp
	}

	e := newEnv(t)
	a := e.web()
	code, _ := e.code(a)
	tr := e.exchange(a, code)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(token string) (map[string]any, string, error) {
		cmd := exec.Command(node, "verify.mjs", e.issuer, webApp)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+ca)
		cmd.Stdin = strings.NewReader(token)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var out map[string]any
		_ = json.Unmarshal(stdout.Bytes(), &out)
		return out, stderr.String(), err
	}
	out, stderr, err := verify(tr.IDToken)
	if err != nil {
		t.Fatalf("jose refused Verity's ID token: %v\n%s", err, stderr)
	}
	payload, _ := out["payload"].(map[string]any)
	header, _ := out["header"].(map[string]any)
	if payload["sub"] != aliceID || payload["nonce"] != a.nonce || header["alg"] != "ES256" || header["kid"] != headerOf(t, tr.IDToken)["kid"] {
		t.Fatalf("jose verified %v", out)
	}
	// And refuses a tampered one.
	parts := strings.Split(tr.IDToken, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "A." + parts[2]
	if _, _, err := verify(tampered); err == nil {
		t.Fatal("jose accepted a tampered ID token")
	}
}
