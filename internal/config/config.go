// Package config defines Verity's configuration file: one YAML (or JSON)
// document whose types below are the documented format. Every field can be
// overridden by an environment variable named after its path, e.g.
// store.dsn by VERITY_STORE_DSN and http.tls.certFile by
// VERITY_HTTP_TLS_CERT_FILE. Unknown keys and unknown VERITY_ variables are
// errors, never ignored. config imports only leaf packages.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/verityhq/verity/internal/strictjson"
)

// Config is the whole configuration of one Verity node.
type Config struct {
	// DataDir holds the embedded database, generated TLS material and other
	// node-local state. Default "./verity-data".
	DataDir string `json:"dataDir,omitempty"`
	// HTTP configures the listener that serves the admin API, health and
	// metrics endpoints.
	HTTP HTTP `json:"http,omitempty"`
	// Store selects and tunes the database.
	Store Store `json:"store,omitempty"`
	// Log configures structured logging.
	Log Log `json:"log,omitempty"`
	// Auth configures API sign-in.
	Auth Auth `json:"auth,omitempty"`
	// Geo configures IP geolocation for country named locations.
	Geo Geo `json:"geo,omitempty"`
	// Secrets configures how secrets are kept at rest.
	Secrets Secrets `json:"secrets,omitempty"`
	// Signing configures the keys that sign tokens.
	Signing Signing `json:"signing,omitempty"`
	// Proxy configures the identity-aware proxy's listener.
	Proxy Proxy `json:"proxy,omitempty"`
	// Audit configures the tamper-evident audit log.
	Audit Audit `json:"audit,omitempty"`
	// Detect configures threat detection and automated response.
	Detect Detect `json:"detect,omitempty"`
	// PIM configures just-in-time roles.
	PIM PIM `json:"pim,omitempty"`
}

// PIM configures just-in-time roles (docs/pim.md).
type PIM struct {
	// Notifications configures the webhooks that roles' settings name
	// (notify) for their PIM events.
	Notifications PIMNotifications `json:"notifications,omitempty"`
	// ReviewRetention is how long access review instances that ended,
	// with their decision items, are kept (docs/access-reviews.md#retention);
	// 0 keeps them for good. The default is a year (pim.DefaultReviewRetention).
	ReviewRetention Duration `json:"reviewRetention,omitempty"`
}

// PIMNotifications configures how PIM events are posted.
type PIMNotifications struct {
	// WebhookSecretFile holds the secret every notification is signed
	// with, as Standard Webhooks says ("whsec_" and base64, one line).
	// Without it nothing is posted, and each event that would have been is
	// in the audit log as undelivered.
	WebhookSecretFile string `json:"webhookSecretFile,omitempty"`
	// Timeout bounds each attempt to post (1s–1m); Attempts is how many
	// one event gets per webhook (1–10), 1s apart and doubling.
	Timeout  Duration `json:"timeout,omitempty"`
	Attempts int      `json:"attempts,omitempty"`
}

// Detect configures threat detection and automated response
// (docs/detect.md).
type Detect struct {
	// Detectors sets detectors' thresholds, by detector name:
	// {"impossibleTravel": {"speedKmh": 900}, "passwordSpray": {"accounts": 10}}.
	// In the environment: VERITY_DETECT_DETECTORS as JSON.
	Detectors RawObjects `json:"detectors,omitempty"`
	// Disabled lists detectors that do not run.
	Disabled KeyList `json:"disabled,omitempty"`
	// AnonymousAddressList lists anonymising addresses (a Tor exit list, VPN
	// and proxy ranges): one address or CIDR per line, '#' comments. Read
	// at start.
	AnonymousAddressList string `json:"anonymousAddressList,omitempty"`
	// Playbooks are the automated responses. In the environment:
	// VERITY_DETECT_PLAYBOOKS as a JSON array.
	Playbooks Playbooks `json:"playbooks,omitempty"`
	// DryRun makes every playbook record what it would do and do nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

// Playbook is an automated response to alerts.
type Playbook struct {
	// Name identifies the playbook in records and the audit log.
	Name string `json:"name"`
	// Detectors whose alerts it answers; empty: all.
	Detectors []string `json:"detectors,omitempty"`
	// MinSeverity is the least severity answered: low (default), medium,
	// high.
	MinSeverity string `json:"minSeverity,omitempty"`
	// Actions: revokeSessions, blockSignIn, requirePasswordChange,
	// disableServicePrincipal, confirmCompromised, webhook.
	Actions []string `json:"actions"`
	// WebhookURL receives alerts (the webhook action), signed as Standard
	// Webhooks says with the secret in WebhookSecretFile ("whsec_" and
	// base64, one line).
	WebhookURL        string `json:"webhookURL,omitempty"`
	WebhookSecretFile string `json:"webhookSecretFile,omitempty"`
	// DryRun records what the playbook would do and does nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

// Playbooks is a list of playbooks; in the environment, a JSON array.
type Playbooks []Playbook

// UnmarshalJSON reads the list strictly (unknown fields are errors).
func (p *Playbooks) UnmarshalJSON(b []byte) error {
	var list []Playbook
	if err := strictjson.Unmarshal(b, &list); err != nil {
		var fe *strictjson.FieldError
		if errors.As(err, &fe) {
			return strictjson.Errorf("detect.playbooks"+fe.Path, "%s", fe.Message)
		}
		return strictjson.Errorf("detect.playbooks", "%v", err)
	}
	*p = list
	return nil
}

// UnmarshalText reads VERITY_DETECT_PLAYBOOKS: the list as JSON.
func (p *Playbooks) UnmarshalText(b []byte) error { return p.UnmarshalJSON(b) }

// RawObjects maps names to JSON objects that another package reads (and
// checks) strictly.
type RawObjects map[string]json.RawMessage

// UnmarshalJSON takes an object of objects.
func (r *RawObjects) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("must be an object of objects, by name")
	}
	for k, v := range m {
		if t := strings.TrimSpace(string(v)); !strings.HasPrefix(t, "{") {
			return fmt.Errorf("%s: must be an object of settings", k)
		}
	}
	*r = m
	return nil
}

// UnmarshalText reads the object as JSON (from the environment).
func (r *RawObjects) UnmarshalText(b []byte) error { return r.UnmarshalJSON(b) }

// Audit configures the tamper-evident audit log (docs/audit.md).
type Audit struct {
	// CheckpointInterval is how often a node signs a checkpoint of the
	// audit log while it grows (1s–24h). Default 1m.
	CheckpointInterval Duration `json:"checkpointInterval,omitempty"`
	// Retention is how long audit events are kept: older ones are deleted
	// (their hashes stay in the tree, so it still verifies), once every
	// shared sink has delivered them. 0, the default, keeps them all; at
	// least 24h otherwise.
	Retention Duration `json:"retention,omitempty"`
	// Witnesses are the note verifier keys of witnesses whose
	// co-signatures of checkpoints are kept (verity audit witness). In the
	// environment: the keys separated by commas.
	Witnesses KeyList `json:"witnesses,omitempty"`
	// Sinks export every audit event, in order, resuming after outages
	// and restarts. In the environment: VERITY_AUDIT_SINKS as a JSON
	// array.
	Sinks AuditSinks `json:"sinks,omitempty"`
}

// AuditSink is one export of the audit log.
type AuditSink struct {
	// Name identifies the sink: its cursor in the store, its logs.
	Name string `json:"name"`
	// Type is file (JSON lines on this node), syslog (RFC 5424 over TLS,
	// or TCP with plain) or otlp (OpenTelemetry logs over OTLP/HTTP).
	Type string `json:"type"`
	// Path is a file sink's file.
	Path string `json:"path,omitempty"`
	// Address is a syslog sink's server, host:port.
	Address string `json:"address,omitempty"`
	// Plain sends syslog over TCP without TLS (a local relay only).
	Plain bool `json:"plain,omitempty"`
	// URL is an otlp sink's logs endpoint, e.g.
	// https://collector:4318/v1/logs.
	URL string `json:"url,omitempty"`
	// Headers are sent with every OTLP request (an API key).
	Headers map[string]string `json:"headers,omitempty"`
	// TLS: roots to trust besides the system's and a client certificate,
	// for syslog over TLS and https OTLP endpoints.
	TLS UpstreamTLS `json:"tls,omitempty"`
}

// KeyList is a list of strings (keys, CIDRs, names): a JSON array in the
// file, comma-separated in the environment.
type KeyList []string

// UnmarshalJSON takes an array of strings.
func (k *KeyList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New("must be an array of strings")
	}
	*k = list
	return nil
}

// UnmarshalText takes keys separated by commas.
func (k *KeyList) UnmarshalText(b []byte) error {
	*k = nil
	for _, v := range strings.Split(string(b), ",") {
		if v = strings.TrimSpace(v); v != "" {
			*k = append(*k, v)
		}
	}
	return nil
}

// AuditSinks is a list of sinks; in the environment, a JSON array.
type AuditSinks []AuditSink

// UnmarshalJSON reads the list strictly (unknown fields are errors).
func (s *AuditSinks) UnmarshalJSON(b []byte) error {
	var list []AuditSink
	if err := strictjson.Unmarshal(b, &list); err != nil {
		var fe *strictjson.FieldError
		if errors.As(err, &fe) {
			return strictjson.Errorf("audit.sinks"+fe.Path, "%s", fe.Message)
		}
		return strictjson.Errorf("audit.sinks", "%v", err)
	}
	*s = list
	return nil
}

// UnmarshalText reads VERITY_AUDIT_SINKS: the list as JSON.
func (s *AuditSinks) UnmarshalText(b []byte) error { return s.UnmarshalJSON(b) }

var sinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s AuditSinks) validate() error {
	seen := map[string]bool{}
	for i, k := range s {
		path := strictjson.Index("audit.sinks", i)
		if !sinkName.MatchString(k.Name) {
			return strictjson.Errorf(path+".name", "must be 1 to 64 letters, digits, '.', '_' or '-'")
		}
		if seen[k.Name] {
			return strictjson.Errorf(path+".name", "%q names two sinks", k.Name)
		}
		seen[k.Name] = true
		switch k.Type {
		case "file":
			if k.Path == "" {
				return strictjson.Errorf(path+".path", "a file sink needs the file's path")
			}
		case "syslog":
			if _, _, err := net.SplitHostPort(k.Address); err != nil {
				return strictjson.Errorf(path+".address", "must be host:port: %v", err)
			}
		case "otlp":
			u, err := url.Parse(k.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return strictjson.Errorf(path+".url", "must be the collector's http(s) logs endpoint, e.g. https://collector:4318/v1/logs")
			}
		default:
			return strictjson.Errorf(path+".type", "must be file, syslog or otlp, not %q", k.Type)
		}
		if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
			return strictjson.Errorf(path+".tls", "certFile and keyFile must be set together")
		}
	}
	return nil
}

// Proxy configures the identity-aware proxy, which serves the published
// app routes on a listener of its own.
type Proxy struct {
	// Addr is the listen address, host:port; empty turns the proxy off.
	// Default "127.0.0.1:9443".
	Addr string `json:"addr,omitempty"`
	// TLS is the certificate for the routes' hosts. Default: http.tls's
	// files (with the local CA of `verity up`, a certificate for
	// localhost and *.localhost); plain HTTP when http.tls.disable is set
	// and no files are given here.
	TLS TLS `json:"tls,omitempty"`
	// ClientCertificates: "request" asks TLS clients for a certificate,
	// which identifies an application through its keyCredentials; "off"
	// (the default) does not ask (browsers may show a certificate picker
	// when asked).
	ClientCertificates string `json:"clientCertificates,omitempty"`
	// AuditFailOpen serves requests whose decision the audit log cannot
	// record (its backlog is full) instead of refusing them with 503.
	// Default false: fail closed.
	AuditFailOpen bool `json:"auditFailOpen,omitempty"`
	// ShutdownTimeout is how long proxied requests may run after SIGTERM.
	// Default 20s.
	ShutdownTimeout Duration `json:"shutdownTimeout,omitempty"`
	// ReadHeaderTimeout bounds reading a request's headers (slow
	// clients). Default 10s.
	ReadHeaderTimeout Duration `json:"readHeaderTimeout,omitempty"`
	// MaxHeaderBytes bounds a request's headers (431 past it). Default
	// 65536.
	MaxHeaderBytes int `json:"maxHeaderBytes,omitempty"`
	// MaxBodyBytes bounds a request body (413 past it); -1: no bound.
	// Default 67108864 (64 MiB).
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// RateLimit limits requests per client address and per signed-in
	// identity. Off by default.
	RateLimit ProxyRateLimits `json:"rateLimit,omitempty"`
	// UpstreamTLS configures TLS towards https upstreams.
	UpstreamTLS UpstreamTLS `json:"upstreamTLS,omitempty"`
	// SignInURL is where the proxy sends browsers to sign in: the
	// external URL of the Verity nodes that serve sign-in (their
	// http.externalURL), also the issuer of the access tokens it takes.
	// Default: this node's http.externalURL. Required by `verity proxy`,
	// which serves no sign-in of its own.
	SignInURL string `json:"signInURL,omitempty"`
}

// UpstreamTLS is how the proxy connects to https upstreams.
type UpstreamTLS struct {
	// CAFile holds PEM certificates of roots to trust besides the
	// system's (an internal CA).
	CAFile string `json:"caFile,omitempty"`
	// CertFile and KeyFile are the proxy's client certificate for
	// upstreams that require mutual TLS.
	CertFile string `json:"certFile,omitempty"`
	KeyFile  string `json:"keyFile,omitempty"`
}

// ProxyRateLimits are the proxy's token buckets.
type ProxyRateLimits struct {
	PerIP       RateLimit `json:"perIP,omitempty"`
	PerIdentity RateLimit `json:"perIdentity,omitempty"`
}

// RateLimit is a token bucket: RequestsPerSecond on average (0: off),
// Burst at once (default: one second's worth).
type RateLimit struct {
	RequestsPerSecond float64 `json:"requestsPerSecond,omitempty"`
	Burst             int     `json:"burst,omitempty"`
}

// Secrets configures the encryption of secrets at rest (second-factor
// secrets, token-signing keys).
type Secrets struct {
	// MasterKeyFile holds the master key that seals secrets in the
	// database: 32 random bytes, either raw (head -c 32 /dev/urandom) or as
	// one line of standard base64 (openssl rand -base64 32). Further base64
	// lines are old master keys that still open what they sealed, for
	// rotation; the first line seals. The file must give group and others
	// no access. When it is missing a node creates it with a new key (mode
	// 0600), so every node sharing a PostgreSQL database needs a copy of the
	// same file before it starts. Default DataDir/master.key.
	MasterKeyFile string `json:"masterKeyFile,omitempty"`
}

// Signing configures the keys that sign tokens. Each key is published in
// the JWKS a day before it signs and stays published a day after.
type Signing struct {
	// Algorithm of new signing keys: ES256 or EdDSA. Default ES256.
	Algorithm string `json:"algorithm,omitempty"`
	// RotateEvery is how long a key signs before the next one takes over.
	// Default 720h (30 days); between 48h and 8760h.
	RotateEvery Duration `json:"rotateEvery,omitempty"`
}

// Geo configures IP geolocation.
type Geo struct {
	// MMDBFile is a MaxMind-format country database (GeoLite2-Country,
	// GeoIP2-Country, DB-IP country lite, ...). Without one, conditional
	// access sees the country only when a request states it, and country
	// named locations treat other sign-ins as from an unknown country.
	MMDBFile string `json:"mmdbFile,omitempty"`
}

// HTTP configures the HTTP listener.
type HTTP struct {
	// Addr is the listen address, host:port. Default "127.0.0.1:8443".
	Addr string `json:"addr,omitempty"`
	// ExternalURL is the URL users reach this node at, printed at start and
	// used in links. Default derived from Addr.
	ExternalURL string `json:"externalURL,omitempty"`
	// TLS configures HTTPS. With no files, `verity up` generates a local CA
	// and `verity server` refuses to start unless TLS.Disable is set.
	TLS TLS `json:"tls,omitempty"`
	// MaxBodyBytes caps every request body. Default 1 MiB; apply documents
	// get ApplyMaxBodyBytes.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// ApplyMaxBodyBytes caps policy-as-code documents. Default 16 MiB.
	ApplyMaxBodyBytes int64 `json:"applyMaxBodyBytes,omitempty"`
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout Duration `json:"readTimeout,omitempty"`
	// WriteTimeout bounds writing a response. Default 60s.
	WriteTimeout Duration `json:"writeTimeout,omitempty"`
	// ShutdownTimeout is how long in-flight requests may run after SIGTERM.
	// Default 20s.
	ShutdownTimeout Duration `json:"shutdownTimeout,omitempty"`
	// TrustedProxies are the addresses (CIDRs) of reverse proxies and load
	// balancers in front of Verity whose X-Forwarded-For is believed: the
	// client is the address left of the last trusted hop. Without them
	// the connection's address is the client, whatever a header says.
	// In the environment: CIDRs separated by commas.
	TrustedProxies KeyList `json:"trustedProxies,omitempty"`
}

// TLS configures certificates for the listener.
type TLS struct {
	// CertFile is a PEM certificate chain.
	CertFile string `json:"certFile,omitempty"`
	// KeyFile is the PEM private key for CertFile.
	KeyFile string `json:"keyFile,omitempty"`
	// Disable serves plain HTTP: only behind a TLS-terminating proxy.
	Disable bool `json:"disable,omitempty"`
}

// Store selects the database engine.
type Store struct {
	// DSN chooses the engine: "postgres://user@host:5432/db?sslmode=..."
	// for PostgreSQL, or a file path (or "sqlite:PATH") for the embedded
	// SQLite database. Default: DataDir/verity.db.
	DSN string `json:"dsn,omitempty"`
	// ConnectTimeout is how long start-up keeps retrying an unreachable
	// database before giving up. Default 30s.
	ConnectTimeout Duration `json:"connectTimeout,omitempty"`
	// PollInterval is how often a node polls for changes when PostgreSQL
	// notifications are unavailable. Default 1s.
	PollInterval Duration `json:"pollInterval,omitempty"`
	// MaxConns caps the PostgreSQL connection pool. Default 10.
	MaxConns int `json:"maxConns,omitempty"`
	// ChangeRetention is how many change-log entries are kept for nodes
	// that catch up incrementally. Default 100000.
	ChangeRetention int `json:"changeRetention,omitempty"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `json:"level,omitempty"`
	// Format is json or text. Default json.
	Format string `json:"format,omitempty"`
}

// Auth configures API authentication.
type Auth struct {
	// TokenTTL is the lifetime of an API bearer token. Default 8h, at most 24h.
	TokenTTL Duration `json:"tokenTTL,omitempty"`
	// MaxFailedLogins locks a principal's password sign-in after this many
	// consecutive failures for LockoutDuration. Default 10.
	MaxFailedLogins int `json:"maxFailedLogins,omitempty"`
	// LockoutDuration is how long a locked password sign-in stays locked.
	// Default 5m.
	LockoutDuration Duration `json:"lockoutDuration,omitempty"`
	// BreachedPasswordsFile is a list of breached passwords in the Have I
	// Been Pwned download format (SHA1HEX:COUNT lines, sorted by hash, as
	// the pwned-passwords downloader writes them); new passwords found in
	// it are refused. Looked up by binary search in the file, never loaded
	// into memory.
	BreachedPasswordsFile string `json:"breachedPasswordsFile,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string such as "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`must be a duration string such as "30s"`)
	}
	return d.UnmarshalText([]byte(s))
}

// UnmarshalText parses a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("must be a duration such as \"30s\", not %q", b)
	}
	if v < 0 {
		return fmt.Errorf("must not be negative")
	}
	*d = Duration(v)
	return nil
}

// Default returns the configuration used when a field is not set.
func Default() Config {
	return Config{
		DataDir: "./verity-data",
		HTTP: HTTP{
			Addr:              "127.0.0.1:8443",
			MaxBodyBytes:      1 << 20,
			ApplyMaxBodyBytes: 16 << 20,
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      Duration(60 * time.Second),
			ShutdownTimeout:   Duration(20 * time.Second),
		},
		Store: Store{
			ConnectTimeout:  Duration(30 * time.Second),
			PollInterval:    Duration(time.Second),
			MaxConns:        10,
			ChangeRetention: 100000,
		},
		Log:     Log{Level: "info", Format: "json"},
		Auth:    Auth{TokenTTL: Duration(8 * time.Hour), MaxFailedLogins: 10, LockoutDuration: Duration(5 * time.Minute)},
		Signing: Signing{Algorithm: "ES256", RotateEvery: Duration(30 * 24 * time.Hour)},
		Audit:   Audit{CheckpointInterval: Duration(time.Minute)},
		PIM: PIM{Notifications: PIMNotifications{Timeout: Duration(10 * time.Second), Attempts: 3},
			ReviewRetention: Duration(365 * 24 * time.Hour)},
		Proxy: Proxy{Addr: "127.0.0.1:9443", ShutdownTimeout: Duration(20 * time.Second), ReadHeaderTimeout: Duration(10 * time.Second),
			MaxHeaderBytes: 64 << 10, MaxBodyBytes: 64 << 20},
	}
}

// Load reads the file at path (YAML or JSON; "" means no file), applies
// environment overrides from env (os.Environ form) and defaults, and
// validates the result.
func Load(path string, env []string) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("read config: %w", err)
		}
		if err := Parse(b, &cfg); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := ApplyEnv(&cfg, env); err != nil {
		return Config{}, err
	}
	cfg.fillDerived()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Parse decodes a YAML or JSON document over cfg, rejecting unknown keys
// with their path.
func Parse(doc []byte, cfg *Config) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if strings.TrimSpace(string(js)) == "null" {
		return nil // an empty file keeps the defaults
	}
	return strictjson.Unmarshal(js, cfg)
}

func (c *Config) fillDerived() {
	if c.Store.DSN == "" {
		c.Store.DSN = filepath.Join(c.DataDir, "verity.db")
	}
	if c.Secrets.MasterKeyFile == "" {
		c.Secrets.MasterKeyFile = filepath.Join(c.DataDir, "master.key")
	}
	if c.HTTP.ExternalURL == "" {
		scheme := "https"
		if c.HTTP.TLS.Disable {
			scheme = "http"
		}
		host, port, err := net.SplitHostPort(c.HTTP.Addr)
		if err == nil {
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "localhost"
			}
			c.HTTP.ExternalURL = scheme + "://" + net.JoinHostPort(host, port)
		}
	}
}

// Validate reports the first invalid field with its path.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return strictjson.Errorf("dataDir", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		return strictjson.Errorf("http.addr", "must be host:port: %v", err)
	}
	if (c.HTTP.TLS.CertFile == "") != (c.HTTP.TLS.KeyFile == "") {
		return strictjson.Errorf("http.tls", "certFile and keyFile must be set together")
	}
	if c.HTTP.TLS.Disable && c.HTTP.TLS.CertFile != "" {
		return strictjson.Errorf("http.tls.disable", "cannot be true when certFile is set")
	}
	if c.HTTP.MaxBodyBytes < 1024 || c.HTTP.MaxBodyBytes > 64<<20 {
		return strictjson.Errorf("http.maxBodyBytes", "must be between 1024 and 67108864")
	}
	if c.HTTP.ApplyMaxBodyBytes < c.HTTP.MaxBodyBytes || c.HTTP.ApplyMaxBodyBytes > 256<<20 {
		return strictjson.Errorf("http.applyMaxBodyBytes", "must be between maxBodyBytes and 268435456")
	}
	for path, d := range map[string]Duration{
		"http.readTimeout": c.HTTP.ReadTimeout, "http.writeTimeout": c.HTTP.WriteTimeout,
		"store.pollInterval": c.Store.PollInterval, "auth.tokenTTL": c.Auth.TokenTTL,
	} {
		if d <= 0 {
			return strictjson.Errorf(path, "must be positive")
		}
	}
	if c.Auth.TokenTTL.D() > 24*time.Hour {
		return strictjson.Errorf("auth.tokenTTL", "must be at most 24h")
	}
	if c.Auth.MaxFailedLogins < 1 {
		return strictjson.Errorf("auth.maxFailedLogins", "must be at least 1")
	}
	if c.Store.MaxConns < 1 || c.Store.MaxConns > 1000 {
		return strictjson.Errorf("store.maxConns", "must be between 1 and 1000")
	}
	if c.Store.ChangeRetention < 1000 {
		return strictjson.Errorf("store.changeRetention", "must be at least 1000")
	}
	if c.Secrets.MasterKeyFile == "" {
		return strictjson.Errorf("secrets.masterKeyFile", "must not be empty")
	}
	if c.Proxy.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Proxy.Addr); err != nil {
			return strictjson.Errorf("proxy.addr", "must be host:port, or empty to turn the proxy off: %v", err)
		}
		if _, port, _ := net.SplitHostPort(c.Proxy.Addr); c.Proxy.Addr == c.HTTP.Addr && port != "0" {
			return strictjson.Errorf("proxy.addr", "must differ from http.addr")
		}
	}
	if c.Proxy.SignInURL != "" {
		u, err := url.Parse(c.Proxy.SignInURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			(u.Path != "" && u.Path != "/") {
			return strictjson.Errorf("proxy.signInURL", "must be an http(s) URL with a host and nothing after it, like https://verity.example.com")
		}
	}
	if (c.Proxy.TLS.CertFile == "") != (c.Proxy.TLS.KeyFile == "") {
		return strictjson.Errorf("proxy.tls", "certFile and keyFile must be set together")
	}
	if c.Proxy.ShutdownTimeout <= 0 {
		return strictjson.Errorf("proxy.shutdownTimeout", "must be positive")
	}
	if (c.Proxy.UpstreamTLS.CertFile == "") != (c.Proxy.UpstreamTLS.KeyFile == "") {
		return strictjson.Errorf("proxy.upstreamTLS", "certFile and keyFile must be set together")
	}
	switch c.Proxy.ClientCertificates {
	case "", "off", "request":
	default:
		return strictjson.Errorf("proxy.clientCertificates", "must be off or request, not %q", c.Proxy.ClientCertificates)
	}
	if c.Proxy.ReadHeaderTimeout <= 0 {
		return strictjson.Errorf("proxy.readHeaderTimeout", "must be positive")
	}
	if c.Proxy.MaxHeaderBytes < 4096 || c.Proxy.MaxHeaderBytes > 1<<20 {
		return strictjson.Errorf("proxy.maxHeaderBytes", "must be between 4096 and 1048576")
	}
	if c.Proxy.MaxBodyBytes == 0 || c.Proxy.MaxBodyBytes < -1 {
		return strictjson.Errorf("proxy.maxBodyBytes", "must be positive, or -1 for no bound")
	}
	for path, l := range map[string]RateLimit{"proxy.rateLimit.perIP": c.Proxy.RateLimit.PerIP, "proxy.rateLimit.perIdentity": c.Proxy.RateLimit.PerIdentity} {
		if l.RequestsPerSecond < 0 || l.RequestsPerSecond > 1e6 {
			return strictjson.Errorf(path+".requestsPerSecond", "must be between 0 (off) and 1000000")
		}
		if l.Burst < 0 || l.Burst > 1e6 {
			return strictjson.Errorf(path+".burst", "must be between 0 (one second's worth) and 1000000")
		}
	}
	switch c.Signing.Algorithm {
	case "ES256", "EdDSA":
	default:
		return strictjson.Errorf("signing.algorithm", "must be ES256 or EdDSA, not %q", c.Signing.Algorithm)
	}
	if d := c.Signing.RotateEvery.D(); d < 48*time.Hour || d > 8760*time.Hour {
		return strictjson.Errorf("signing.rotateEvery", "must be between 48h and 8760h")
	}
	if d := c.Audit.CheckpointInterval.D(); d < time.Second || d > 24*time.Hour {
		return strictjson.Errorf("audit.checkpointInterval", "must be between 1s and 24h")
	}
	if d := c.Audit.Retention.D(); d != 0 && d < 24*time.Hour {
		return strictjson.Errorf("audit.retention", "must be 0 (keep everything) or at least 24h")
	}
	for i, w := range c.Audit.Witnesses {
		// name+hash+key: the name has no '+', the hash is 8 hex digits,
		// the key base64 (which may itself hold '+').
		parts := strings.SplitN(w, "+", 3)
		if len(parts) != 3 || parts[0] == "" || len(parts[1]) != 8 || strings.Trim(parts[1], "0123456789abcdef") != "" ||
			parts[2] == "" || strings.ContainsAny(w, " \t\n") {
			return strictjson.Errorf(strictjson.Index("audit.witnesses", i), "must be a note verifier key, name+hash+key (verity audit witness-key prints it)")
		}
	}
	if err := c.Audit.Sinks.validate(); err != nil {
		return err
	}
	for i, p := range c.HTTP.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return strictjson.Errorf(strictjson.Index("http.trustedProxies", i), "must be an address or a CIDR such as 10.0.0.0/8, not %q", p)
			}
		}
	}
	seen := map[string]bool{}
	for i, p := range c.Detect.Playbooks {
		path := strictjson.Index("detect.playbooks", i)
		if p.Name == "" || seen[p.Name] {
			return strictjson.Errorf(path+".name", "must name the playbook, once")
		}
		seen[p.Name] = true
		if (p.WebhookURL == "") != (p.WebhookSecretFile == "") {
			return strictjson.Errorf(path+".webhookSecretFile", "webhookURL and webhookSecretFile go together")
		}
		if p.WebhookURL != "" {
			u, err := url.Parse(p.WebhookURL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return strictjson.Errorf(path+".webhookURL", "must be an http(s) URL")
			}
		}
	}
	if f := c.PIM.Notifications.WebhookSecretFile; strings.HasPrefix(f, "whsec_") {
		return strictjson.Errorf("pim.notifications.webhookSecretFile", "must name the file that holds the secret, not the secret")
	}
	if d := c.PIM.Notifications.Timeout.D(); d < time.Second || d > time.Minute {
		return strictjson.Errorf("pim.notifications.timeout", "must be between 1s and 1m")
	}
	if a := c.PIM.Notifications.Attempts; a < 1 || a > 10 {
		return strictjson.Errorf("pim.notifications.attempts", "must be between 1 and 10")
	}
	if d := c.PIM.ReviewRetention.D(); d != 0 && d < 24*time.Hour {
		return strictjson.Errorf("pim.reviewRetention", "must be 0 (keep everything) or at least 24h")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return strictjson.Errorf("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return strictjson.Errorf("log.format", "must be json or text, not %q", c.Log.Format)
	}
	return nil
}
