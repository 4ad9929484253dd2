package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Defaults applied by Open to zero Config fields.
const (
	// DefaultConnectTimeout is how long Open retries an unreachable database.
	DefaultConnectTimeout = 30 * time.Second
	// DefaultPollInterval is how often the change feed polls.
	DefaultPollInterval = time.Second
	// DefaultMaxConns is the PostgreSQL pool size or SQLite read pool size.
	DefaultMaxConns = 10
	// DefaultChangeRetention is how many change-log rows compaction keeps.
	DefaultChangeRetention = 100000
)

// Config says which database the store uses and how it behaves. It is part
// of Verity's configuration file (the "store" section); durations accept Go
// duration strings such as "30s" as well as integer nanoseconds.
type Config struct {
	// DSN selects the engine and the database. "postgres://..." or
	// "postgresql://..." opens PostgreSQL (libpq URL syntax, e.g.
	// "postgres://verity:secret@db.internal:5432/verity?sslmode=verify-full").
	// Anything else is a SQLite file: "sqlite:/var/lib/verity/verity.db",
	// "file:/var/lib/verity/verity.db" or a plain path. Required.
	DSN string `json:"dsn"`
	// ConnectTimeout is how long Open keeps retrying an unreachable
	// PostgreSQL server (or a SQLite file another process holds locked),
	// with backoff, logging each attempt, before it gives up. Default 30s.
	ConnectTimeout time.Duration `json:"connectTimeout,omitempty"`
	// PollInterval is how often the change feed polls the revision counter,
	// as a fallback to PostgreSQL notifications and to see writes by other
	// processes sharing a SQLite file. Default 1s.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
	// MaxConns caps the connections the store opens: the PostgreSQL pool
	// size, or the number of SQLite read connections (SQLite always writes
	// through one connection). Default 10.
	MaxConns int `json:"maxConns,omitempty"`
	// ChangeRetention is how many change-log rows compaction keeps; a node
	// that falls further behind reloads everything. Default 100000.
	ChangeRetention int `json:"changeRetention,omitempty"`
}

// Validate reports the first problem with c, without touching the database.
func (c Config) Validate() error {
	if strings.TrimSpace(c.DSN) == "" {
		return errors.New("store: config: dsn is required")
	}
	switch c.engine() {
	case enginePostgres:
		u, err := url.Parse(c.DSN)
		if err != nil {
			return errors.New("store: config: dsn is not a valid postgres url")
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return errors.New("store: config: postgres dsn names no host")
		}
	default:
		p := c.sqlitePath()
		if p == "" {
			return errors.New("store: config: sqlite dsn names no file")
		}
		if p == ":memory:" || strings.Contains(p, "mode=memory") {
			return errors.New("store: config: in-memory sqlite is not supported; name a file")
		}
		if strings.ContainsAny(p, "?#") {
			return fmt.Errorf("store: config: sqlite path %q must not contain '?' or '#'", p)
		}
	}
	switch {
	case c.ConnectTimeout < 0:
		return errors.New("store: config: connectTimeout must not be negative")
	case c.PollInterval < 0:
		return errors.New("store: config: pollInterval must not be negative")
	case c.PollInterval > 0 && c.PollInterval < time.Millisecond:
		return errors.New("store: config: pollInterval must be at least 1ms")
	case c.MaxConns < 0:
		return errors.New("store: config: maxConns must not be negative")
	case c.ChangeRetention < 0:
		return errors.New("store: config: changeRetention must not be negative")
	}
	return nil
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ChangeRetention == 0 {
		c.ChangeRetention = DefaultChangeRetention
	}
	return c
}

const (
	engineSQLite   = "sqlite"
	enginePostgres = "postgres"
)

func (c Config) engine() string {
	if strings.HasPrefix(c.DSN, "postgres://") || strings.HasPrefix(c.DSN, "postgresql://") {
		return enginePostgres
	}
	return engineSQLite
}

// sqlitePath is the file named by a SQLite DSN.
func (c Config) sqlitePath() string {
	p := c.DSN
	for _, prefix := range []string{"sqlite://", "sqlite:", "file://", "file:"} {
		if strings.HasPrefix(p, prefix) {
			p = strings.TrimPrefix(p, prefix)
			break
		}
	}
	return p
}

// password is the password a postgres DSN carries, or "".
func (c Config) password() string {
	if c.engine() != enginePostgres {
		return ""
	}
	u, err := url.Parse(c.DSN)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	return u.Query().Get("password")
}

// RedactedDSN is DSN with any password replaced, safe to log or print.
func (c Config) RedactedDSN() string {
	if c.engine() != enginePostgres {
		return c.DSN
	}
	u, err := url.Parse(c.DSN)
	if err != nil {
		return "postgres://(unparsable)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// LogValue makes slog print c with its DSN password redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("dsn", c.RedactedDSN()),
		slog.Duration("connectTimeout", c.ConnectTimeout),
		slog.Duration("pollInterval", c.PollInterval),
		slog.Int("maxConns", c.MaxConns),
		slog.Int("changeRetention", c.ChangeRetention),
	)
}

// configJSON is Config as it appears in a file, durations as strings.
type configJSON struct {
	DSN             string          `json:"dsn"`
	ConnectTimeout  json.RawMessage `json:"connectTimeout,omitempty"`
	PollInterval    json.RawMessage `json:"pollInterval,omitempty"`
	MaxConns        int             `json:"maxConns,omitempty"`
	ChangeRetention int             `json:"changeRetention,omitempty"`
}

// MarshalJSON writes durations as Go duration strings ("30s").
func (c Config) MarshalJSON() ([]byte, error) {
	out := configJSON{DSN: c.DSN, MaxConns: c.MaxConns, ChangeRetention: c.ChangeRetention}
	if c.ConnectTimeout != 0 {
		out.ConnectTimeout, _ = json.Marshal(c.ConnectTimeout.String())
	}
	if c.PollInterval != 0 {
		out.PollInterval, _ = json.Marshal(c.PollInterval.String())
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads durations given as strings ("30s") or nanoseconds.
func (c *Config) UnmarshalJSON(b []byte) error {
	var in configJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("store: config: %w", err)
	}
	ct, err := parseDuration("connectTimeout", in.ConnectTimeout)
	if err != nil {
		return err
	}
	pi, err := parseDuration("pollInterval", in.PollInterval)
	if err != nil {
		return err
	}
	*c = Config{DSN: in.DSN, ConnectTimeout: ct, PollInterval: pi, MaxConns: in.MaxConns, ChangeRetention: in.ChangeRetention}
	return nil
}

func parseDuration(field string, raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("store: config: %s: %w", field, err)
		}
		return d, nil
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("store: config: %s: want a duration such as \"5s\"", field)
	}
	return time.Duration(n), nil
}
