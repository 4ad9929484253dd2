package detect

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestConfigure(t *testing.T) {
	t.Parallel()
	d := &PasswordSpray{Accounts: 5, Window: 20 * time.Minute}
	if err := Configure(d, json.RawMessage(`{"accounts": 8, "window": "1h"}`)); err != nil {
		t.Fatal(err)
	}
	if d.Accounts != 8 || d.Window != time.Hour {
		t.Fatalf("%+v", d)
	}
	if s := Settings(d); s["window"] != "1h0m0s" || s["accounts"] != 8 {
		t.Fatalf("settings %v", s)
	}
	for _, c := range []struct{ in, want string }{
		{`{"acounts": 8}`, "acounts: unknown setting (settings: accounts, window)"},
		{`{"accounts": -1}`, "accounts: must be a whole number"},
		{`{"accounts": "8"}`, "accounts: must be a whole number"},
		{`{"window": 60}`, "window: must be a duration"},
		{`{"window": "-5m"}`, "window: must be a positive duration"},
		{`[1]`, "must be an object"},
	} {
		err := Configure(d, json.RawMessage(c.in))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.in, err, c.want)
		}
	}
	if d.Accounts != 8 {
		t.Errorf("a refused setting changed the detector: %+v", d)
	}
}
