package detect

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestTrainingLabExpectations replays the Sentinel Training Lab sign-ins
// (both files, nine days apart, as one stream) and holds the alerts to
// testdata/logs/expected.json: the address that tried a disabled account
// and signed in as another is raised; no spray, no brute force.
func TestTrainingLabExpectations(t *testing.T) {
	t.Parallel()
	var raw map[string]json.RawMessage
	var lab struct {
		Files  []string `json:"files"`
		Expect []struct {
			EntityIP         string `json:"entity_ip"`
			DisabledAccount  string `json:"disabled_account"`
			DisabledAttempts int    `json:"disabled_attempts"`
			Successful       string `json:"successful_account_from_same_ip"`
		} `json:"expect"`
	}
	b, err := os.ReadFile("testdata/logs/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw["sentinel-training-lab"], &lab); err != nil {
		t.Fatal(err)
	}
	var all []SignIn
	for _, f := range lab.Files {
		all = append(all, readFile(t, "testdata/logs/"+f)...)
	}
	alerts := Run(all, DefaultDetectors())
	if len(alerts) != 1 {
		t.Fatalf("alerts %+v, want exactly the disabled-account address", alerts)
	}
	a, want := alerts[0], lab.Expect[0]
	if a.Detector != "disabledAccountIP" || a.IP.String() != want.EntityIP || len(a.Evidence) != want.DisabledAttempts {
		t.Fatalf("alert %+v, want %+v", a, want)
	}
	if !strings.Contains(a.Summary, want.Successful) {
		t.Errorf("summary %q does not name %s", a.Summary, want.Successful)
	}
}

func signIn(at time.Time, id, user, ip string, code int) SignIn {
	return SignIn{Time: at, ID: id, User: user, IP: netip.MustParseAddr(ip), Code: code, Success: code == 0, Interactive: true}
}

// TestSprayAndBruteForceThresholds: at the threshold an alert, one short
// of it none; an ongoing spray is raised once.
func TestSprayAndBruteForceThresholds(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	spray := func(users int) []SignIn {
		var out []SignIn
		for i := range users {
			out = append(out, signIn(t0.Add(time.Duration(i)*time.Minute), fmt.Sprint("s", i), fmt.Sprintf("u%d@contoso.com", i), "203.0.113.7", codeWrongPassword))
		}
		// More of the same spray a little later.
		for i := range 3 {
			out = append(out, signIn(t0.Add(time.Duration(users+i)*time.Minute), fmt.Sprint("t", i), fmt.Sprintf("v%d@contoso.com", i), "203.0.113.7", codeWrongPassword))
		}
		return out
	}
	if got := Run(spray(4)[:4], DefaultDetectors()); len(got) != 0 {
		t.Errorf("4 accounts sprayed: %+v", got)
	}
	if got := Run(spray(5), DefaultDetectors()); len(got) != 1 || got[0].Detector != "passwordSpray" || got[0].IP.String() != "203.0.113.7" {
		t.Errorf("5 accounts sprayed, then more: %+v", got)
	}
	// The same failures over two hours are no spray.
	var slow []SignIn
	for i := range 6 {
		slow = append(slow, signIn(t0.Add(time.Duration(i)*25*time.Minute), fmt.Sprint("w", i), fmt.Sprintf("u%d@contoso.com", i), "203.0.113.7", codeWrongPassword))
	}
	if got := Run(slow, DefaultDetectors()); len(got) != 0 {
		t.Errorf("slow failures: %+v", got)
	}

	brute := func(failures int) []SignIn {
		var out []SignIn
		for i := range failures {
			out = append(out, signIn(t0.Add(time.Duration(i)*time.Second), fmt.Sprint("f", i), "alice@contoso.com", "198.51.100.9", codeWrongPassword))
		}
		return append(out, signIn(t0.Add(time.Minute), "ok", "alice@contoso.com", "198.51.100.9", 0))
	}
	if got := Run(brute(9), DefaultDetectors()); len(got) != 0 {
		t.Errorf("9 failures then a success: %+v", got)
	}
	got := Run(brute(10), DefaultDetectors())
	if len(got) != 1 || got[0].Detector != "bruteForce" || got[0].User != "alice@contoso.com" || len(got[0].Evidence) != 11 {
		t.Errorf("10 failures then a success: %+v", got)
	}
}

// TestMFAFatigue: eleven denied prompts then an accepted one, within five
// minutes, from one address, are fatigue; ten are not; the same from
// different addresses is not.
func TestMFAFatigue(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	flood := func(denials int, ip func(i int) string) []SignIn {
		var out []SignIn
		for i := range denials {
			out = append(out, signIn(t0.Add(time.Duration(i)*10*time.Second), fmt.Sprint("d", i), "bob@contoso.com", ip(i), codeMFADenied))
		}
		return append(out, signIn(t0.Add(4*time.Minute), "ok", "bob@contoso.com", ip(0), 0))
	}
	one := func(int) string { return "192.0.2.44" }
	got := Run(flood(11, one), DefaultDetectors())
	if len(got) != 1 || got[0].Detector != "mfaFatigue" || got[0].User != "bob@contoso.com" || len(got[0].Evidence) != 12 {
		t.Fatalf("11 denials then a success: %+v", got)
	}
	if got := Run(flood(10, one), DefaultDetectors()); len(got) != 0 {
		t.Errorf("10 denials then a success: %+v", got)
	}
	if got := Run(flood(11, func(i int) string { return fmt.Sprintf("192.0.2.%d", 10+i%3) }), DefaultDetectors()); len(got) != 0 {
		t.Errorf("denials from three addresses: %+v", got)
	}
}
