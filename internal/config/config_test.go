package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "verity.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFullFile(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.DSN != "postgres://verity@db.internal:5432/verity?sslmode=verify-full" ||
		cfg.Store.ConnectTimeout.D() != time.Minute || cfg.Store.PollInterval.D() != 500*time.Millisecond ||
		cfg.HTTP.ReadTimeout.D() != 20*time.Second || cfg.Auth.TokenTTL.D() != time.Hour || cfg.Log.Format != "text" {
		t.Fatalf("loaded %+v", cfg)
	}
	if cfg.Secrets.MasterKeyFile != "/etc/verity/master.key" || cfg.Signing.Algorithm != "EdDSA" || cfg.Signing.RotateEvery.D() != 14*24*time.Hour {
		t.Fatalf("secrets %+v signing %+v", cfg.Secrets, cfg.Signing)
	}
	if cfg.HTTP.WriteTimeout.D() != 60*time.Second {
		t.Fatalf("unset field lost its default: %v", cfg.HTTP.WriteTimeout.D())
	}
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.DSN != filepath.Join("verity-data", "verity.db") || cfg.HTTP.ExternalURL != "https://127.0.0.1:8443" {
		t.Fatalf("defaults: dsn %q url %q", cfg.Store.DSN, cfg.HTTP.ExternalURL)
	}
	if cfg.Secrets.MasterKeyFile != filepath.Join("verity-data", "master.key") ||
		cfg.Signing.Algorithm != "ES256" || cfg.Signing.RotateEvery.D() != 30*24*time.Hour {
		t.Fatalf("defaults: secrets %+v signing %+v", cfg.Secrets, cfg.Signing)
	}
}

func TestLoadErrorsNameThePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, want string
	}{
		{"unknown key", "store:\n  dsnn: x\n", "store.dsnn: unknown field"},
		{"unknown top key", "listen: :80\n", "listen: unknown field"},
		{"bad duration", "store:\n  connectTimeout: soon\n", `must be a duration such as "30s"`},
		{"wrong type", "http:\n  maxBodyBytes: lots\n", "http.maxBodyBytes: must be an integer"},
		{"invalid value", "log:\n  level: loud\n", `log.level: must be debug, info, warn or error, not "loud"`},
		{"half TLS", "http:\n  tls:\n    certFile: a.pem\n", "http.tls: certFile and keyFile must be set together"},
		{"token ttl too long", "auth:\n  tokenTTL: 48h\n", "auth.tokenTTL: must be at most 24h"},
		{"signing algorithm", "signing:\n  algorithm: HS256\n", `signing.algorithm: must be ES256 or EdDSA, not "HS256"`},
		{"signing rotation too often", "signing:\n  rotateEvery: 24h\n", "signing.rotateEvery: must be between 48h and 8760h"},
		{"signing rotation too rare", "signing:\n  rotateEvery: 9000h\n", "signing.rotateEvery: must be between 48h and 8760h"},
		{"not yaml", "store: [unclosed\n", "not valid YAML"},
		{"witness key", "audit:\n  witnesses: [nope]\n", "audit.witnesses[0]: must be a note verifier key"},
		{"sink unknown field", "audit:\n  sinks:\n    - {name: a, type: file, path: /tmp/a, bogus: 1}\n", "audit.sinks[0].bogus: unknown field"},
		{"sink type", "audit:\n  sinks:\n    - {name: a, type: kafka}\n", `audit.sinks[0].type: must be file, syslog or otlp, not "kafka"`},
		{"sink twice", "audit:\n  sinks:\n    - {name: a, type: file, path: /tmp/a}\n    - {name: a, type: file, path: /tmp/b}\n", `audit.sinks[1].name: "a" names two sinks`},
		{"syslog address", "audit:\n  sinks:\n    - {name: s, type: syslog, address: siem}\n", "audit.sinks[0].address: must be host:port"},
		{"otlp url", "audit:\n  sinks:\n    - {name: o, type: otlp, url: collector:4318}\n", "audit.sinks[0].url: must be the collector's"},
		{"sign-in URL without scheme", "proxy:\n  signInURL: verity.example.com\n", "proxy.signInURL: must be an http(s) URL"},
		{"sign-in URL with a path", "proxy:\n  signInURL: https://verity.example.com/signin\n", "proxy.signInURL: must be an http(s) URL"},
		{"sign-in URL with credentials", "proxy:\n  signInURL: https://a:b@verity.example.com\n", "proxy.signInURL: must be an http(s) URL"},
		{"pim unknown setting", "pim:\n  notifications:\n    webhookSecret: x\n", "pim.notifications.webhookSecret: unknown field"},
		{"pim no attempts", "pim:\n  notifications:\n    attempts: 0\n", "pim.notifications.attempts: must be between 1 and 10"},
		{"pim too many attempts", "pim:\n  notifications:\n    attempts: 50\n", "pim.notifications.attempts: must be between 1 and 10"},
		{"pim timeout", "pim:\n  notifications:\n    timeout: 2m\n", "pim.notifications.timeout: must be between 1s and 1m"},
		{"pim attempts type", "pim:\n  notifications:\n    attempts: three\n", "pim.notifications.attempts: must be an integer"},
		{"pim review retention too short", "pim:\n  reviewRetention: 1h\n", "pim.reviewRetention: must be 0 (keep everything) or at least 24h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(writeFile(t, tt.body), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEmptyFileKeepsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load(writeFile(t, "# nothing yet\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != Default().HTTP.Addr {
		t.Fatalf("addr %q", cfg.HTTP.Addr)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	env := []string{
		"VERITY_STORE_DSN=postgres://a@b/c", "VERITY_HTTP_TLS_DISABLE=true", "VERITY_STORE_MAX_CONNS=7",
		"VERITY_AUTH_TOKEN_TTL=15m", "VERITY_HTTP_ADDR=127.0.0.1:0", "PATH=/bin", "VERITY_SERVER=https://x",
		"VERITY_SECRETS_MASTER_KEY_FILE=/run/secrets/verity-master.key", "VERITY_SIGNING_ALGORITHM=EdDSA", "VERITY_SIGNING_ROTATE_EVERY=168h",
	}
	cfg, err := Load("testdata/full.yaml", env)
	if err == nil {
		t.Fatal("tls.disable with certFile set should be invalid")
	}
	cfg, err = Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.DSN != "postgres://a@b/c" || !cfg.HTTP.TLS.Disable || cfg.Store.MaxConns != 7 || cfg.Auth.TokenTTL.D() != 15*time.Minute {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if cfg.Secrets.MasterKeyFile != "/run/secrets/verity-master.key" || cfg.Signing.Algorithm != "EdDSA" || cfg.Signing.RotateEvery.D() != 168*time.Hour {
		t.Fatalf("secrets and signing overrides not applied: %+v %+v", cfg.Secrets, cfg.Signing)
	}
	if cfg.HTTP.ExternalURL != "http://127.0.0.1:0" {
		t.Fatalf("external URL %q", cfg.HTTP.ExternalURL)
	}
}

func TestEnvErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ env, want string }{
		{"VERITY_STORE_DNS=x", "VERITY_STORE_DNS names no configuration field"},
		{"VERITY_STORE_MAX_CONNS=many", "VERITY_STORE_MAX_CONNS (store.maxConns): must be an integer"},
		{"VERITY_HTTP_TLS_DISABLE=perhaps", "must be true or false"},
		{"VERITY_STORE_POLL_INTERVAL=-1s", "must not be negative"},
	} {
		_, err := Load("", []string{tt.env})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v; want %q", tt.env, err, tt.want)
		}
	}
}

func TestEveryFieldHasAnEnvVar(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, v := range EnvVars() {
		if names[v.Name] {
			t.Errorf("two fields map to %s", v.Name)
		}
		names[v.Name] = true
	}
	for _, want := range []string{"VERITY_DATA_DIR", "VERITY_HTTP_TLS_CERT_FILE", "VERITY_STORE_CONNECT_TIMEOUT", "VERITY_AUTH_MAX_FAILED_LOGINS", "VERITY_HTTP_EXTERNAL_URL",
		"VERITY_SECRETS_MASTER_KEY_FILE", "VERITY_SIGNING_ALGORITHM", "VERITY_SIGNING_ROTATE_EVERY"} {
		if !names[want] {
			t.Errorf("missing %s; have %v", want, names)
		}
	}
}

func TestAuditSinksFromEnv(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", []string{`VERITY_AUDIT_SINKS=[{"name":"siem","type":"syslog","address":"siem.example.com:6514"},{"name":"otel","type":"otlp","url":"https://collector:4318/v1/logs","headers":{"Authorization":"Bearer x"}}]`})
	if err != nil || len(cfg.Audit.Sinks) != 2 || cfg.Audit.Sinks[1].Headers["Authorization"] != "Bearer x" {
		t.Fatalf("%+v %v", cfg.Audit.Sinks, err)
	}
	if _, err := Load("", []string{`VERITY_AUDIT_SINKS=[{"name":"x","type":"file"}]`}); err == nil || !strings.Contains(err.Error(), "audit.sinks[0].path") {
		t.Fatalf("a file sink without a path: %v", err)
	}
}

func TestWitnessKeys(t *testing.T) {
	t.Parallel()
	// The key's base64 may hold '+'.
	key := "witness.example.com+1a2b3c4d+AUxY+z/Qv5a+rK0="
	cfg, err := Load("", []string{"VERITY_AUDIT_WITNESSES=" + key + ", other+0a0b0c0d+AQ=="})
	if err != nil || len(cfg.Audit.Witnesses) != 2 || cfg.Audit.Witnesses[0] != key {
		t.Fatalf("%q %v", cfg.Audit.Witnesses, err)
	}
}

func TestPIMNotifications(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", nil)
	if err != nil || cfg.PIM.Notifications.Timeout.D() != 10*time.Second || cfg.PIM.Notifications.Attempts != 3 || cfg.PIM.Notifications.WebhookSecretFile != "" {
		t.Fatalf("defaults %+v %v", cfg.PIM, err)
	}
	cfg, err = Load(writeFile(t, "pim:\n  notifications:\n    webhookSecretFile: /etc/verity/pim-webhook.secret\n    timeout: 5s\n"),
		[]string{"VERITY_PIM_NOTIFICATIONS_ATTEMPTS=5"})
	if err != nil || cfg.PIM.Notifications.WebhookSecretFile != "/etc/verity/pim-webhook.secret" || cfg.PIM.Notifications.Timeout.D() != 5*time.Second ||
		cfg.PIM.Notifications.Attempts != 5 {
		t.Fatalf("loaded %+v %v", cfg.PIM, err)
	}
	cfg, err = Load("", []string{"VERITY_PIM_NOTIFICATIONS_WEBHOOK_SECRET_FILE=/run/secrets/pim"})
	if err != nil || cfg.PIM.Notifications.WebhookSecretFile != "/run/secrets/pim" {
		t.Fatalf("from the environment %+v %v", cfg.PIM, err)
	}
	// The secret itself where its file belongs: refused, and not repeated.
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	_, err = Load("", []string{"VERITY_PIM_NOTIFICATIONS_WEBHOOK_SECRET_FILE=" + secret})
	if err == nil || !strings.Contains(err.Error(), "pim.notifications.webhookSecretFile: must name the file") || strings.Contains(err.Error(), "MfKQ9r8") {
		t.Fatalf("a secret in place of its file: %v", err)
	}
}

func TestPIMReviewRetention(t *testing.T) {
	t.Parallel()
	cfg, err := Load("", nil)
	if err != nil || cfg.PIM.ReviewRetention.D() != 365*24*time.Hour {
		t.Fatalf("default %v %v", cfg.PIM.ReviewRetention.D(), err)
	}
	cfg, err = Load(writeFile(t, "pim:\n  reviewRetention: 2160h\n"), nil)
	if err != nil || cfg.PIM.ReviewRetention.D() != 90*24*time.Hour {
		t.Fatalf("from the file %v %v", cfg.PIM.ReviewRetention.D(), err)
	}
	cfg, err = Load("", []string{"VERITY_PIM_REVIEW_RETENTION=0s"})
	if err != nil || cfg.PIM.ReviewRetention.D() != 0 {
		t.Fatalf("keep everything from the environment %v %v", cfg.PIM.ReviewRetention.D(), err)
	}
}
