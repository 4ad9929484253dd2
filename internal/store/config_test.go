package store_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		cfg     store.Config
		wantErr string
	}{
		{"sqlite path", store.Config{DSN: "/var/lib/verity/verity.db"}, ""},
		{"sqlite scheme", store.Config{DSN: "sqlite:/var/lib/verity/verity.db"}, ""},
		{"file scheme", store.Config{DSN: "file:verity.db"}, ""},
		{"postgres", store.Config{DSN: "postgres://verity:pw@db:5432/verity"}, ""},
		{"postgresql", store.Config{DSN: "postgresql://db/verity", MaxConns: 20, PollInterval: time.Second}, ""},
		{"empty", store.Config{}, "dsn is required"},
		{"memory", store.Config{DSN: ":memory:"}, "in-memory"},
		{"query in path", store.Config{DSN: "sqlite:x.db?mode=ro"}, "must not contain"},
		{"no host", store.Config{DSN: "postgres:///verity"}, "no host"},
		{"negative timeout", store.Config{DSN: "x.db", ConnectTimeout: -1}, "connectTimeout"},
		{"tiny poll", store.Config{DSN: "x.db", PollInterval: time.Microsecond}, "pollInterval"},
		{"negative conns", store.Config{DSN: "x.db", MaxConns: -1}, "maxConns"},
		{"negative retention", store.Config{DSN: "x.db", ChangeRetention: -1}, "changeRetention"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate: %v, want an error saying %q", err, tc.wantErr)
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	t.Parallel()
	var c store.Config
	in := `{"dsn":"postgres://db/verity","connectTimeout":"45s","pollInterval":500000000,"maxConns":8,"changeRetention":1000}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := store.Config{DSN: "postgres://db/verity", ConnectTimeout: 45 * time.Second, PollInterval: 500 * time.Millisecond, MaxConns: 8, ChangeRetention: 1000}
	if c != want {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"connectTimeout":"45s"`) || !strings.Contains(string(out), `"pollInterval":"500ms"`) {
		t.Fatalf("encoded %s", out)
	}
	var back store.Config
	if err := json.Unmarshal(out, &back); err != nil || back != c {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"dsn":"x.db","pollInterval":"soon"}`), &c); err == nil {
		t.Fatal("a bad duration decoded")
	}
}

func TestConfigRedaction(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://verity:hunter2@db:5432/verity?sslmode=require",
		"postgres://verity@db:5432/verity?password=hunter2",
	} {
		c := store.Config{DSN: dsn}
		if r := c.RedactedDSN(); strings.Contains(r, "hunter2") || !strings.Contains(r, "db:5432") {
			t.Fatalf("RedactedDSN(%s) = %s", dsn, r)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "store", c)
		if strings.Contains(buf.String(), "hunter2") {
			t.Fatalf("logging the config leaked the password: %s", buf.String())
		}
	}
}

// FuzzConfigJSON checks that any input either fails to decode or decodes
// to a config that survives a round trip.
func FuzzConfigJSON(f *testing.F) {
	f.Add([]byte(`{"dsn":"postgres://db/verity","connectTimeout":"45s","pollInterval":500000000,"maxConns":8}`))
	f.Add([]byte(`{"dsn":"x.db","pollInterval":"soon"}`))
	f.Add([]byte(`{"connectTimeout":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var c store.Config
		if err := json.Unmarshal(in, &c); err != nil {
			return
		}
		_ = c.Validate()
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c, err)
		}
		var back store.Config
		if err := json.Unmarshal(out, &back); err != nil || back != c {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", out, back, err, c)
		}
	})
}
