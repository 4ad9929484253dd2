package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// EnvPrefix starts every Verity environment variable.
const EnvPrefix = "VERITY_"

// OtherVariables are VERITY_ variables read by the command line rather than
// the configuration; ApplyEnv leaves them alone.
var OtherVariables = []string{
	"VERITY_CONFIG",           // config file for `verity server`
	"VERITY_DATA",             // data directory for `verity up`
	"VERITY_SERVER",           // API URL for client commands
	"VERITY_TOKEN",            // bearer token for client commands
	"VERITY_CA_FILE",          // CA bundle for client commands
	"VERITY_PGTEST_DIR",       // the test suite's throwaway PostgreSQL
	"VERITY_TEST_POSTGRES",    // PostgreSQL server for the test suite
	"VERITY_CREDENTIALS_FILE", // where `verity login` keeps tokens
}

// EnvVar is one configuration field reachable from the environment.
type EnvVar struct {
	Name string // e.g. VERITY_STORE_DSN
	Path string // e.g. store.dsn
}

// EnvVars lists every configuration field with its variable name.
func EnvVars() []EnvVar {
	var out []EnvVar
	walkFields(reflect.TypeFor[Config](), "", func(path string, _ []int) {
		out = append(out, EnvVar{Name: envName(path), Path: path})
	}, nil)
	return out
}

// ApplyEnv sets fields of cfg from VERITY_ variables in env (os.Environ
// form). A VERITY_ variable that names no field is an error, so a typo
// never passes silently.
func ApplyEnv(cfg *Config, env []string) error {
	fields := map[string][]int{}
	paths := map[string]string{}
	walkFields(reflect.TypeFor[Config](), "", func(path string, index []int) {
		fields[envName(path)] = index
		paths[envName(path)] = path
	}, nil)
	root := reflect.ValueOf(cfg).Elem()
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || slices.Contains(OtherVariables, name) {
			continue
		}
		index, ok := fields[name]
		if !ok {
			return fmt.Errorf("environment variable %s names no configuration field (see `verity config env`)", name)
		}
		if err := setString(root.FieldByIndex(index), value); err != nil {
			return fmt.Errorf("environment variable %s (%s): %w", name, paths[name], err)
		}
	}
	return nil
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// walkFields calls leaf for every settable leaf field of t.
func walkFields(t reflect.Type, prefix string, leaf func(path string, index []int), index []int) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		idx := append(slices.Clone(index), i)
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
			walkFields(f.Type, path, leaf, idx)
			continue
		}
		leaf(path, idx)
	}
}

// envName turns "http.tls.certFile" into "VERITY_HTTP_TLS_CERT_FILE".
func envName(path string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	prevLower := false
	for _, r := range path {
		switch {
		case r == '.':
			b.WriteByte('_')
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
	}
	return b.String()
}

func setString(v reflect.Value, s string) error {
	if tu, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return tu.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("must be true or false, not %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("must be an integer, not %q", s)
		}
		v.SetInt(n)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}
