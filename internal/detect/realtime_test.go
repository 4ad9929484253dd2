package detect

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAssessSignIn judges attempts in flight against a user's history
// with the detectors' rules and thresholds.
func TestAssessSignIn(t *testing.T) {
	t.Parallel()
	ds := DefaultDetectors()
	defaultOf[*AnonymousIP](ds...).List = []string{"185.220.101.0/24"}
	opts := RealtimeOptionsOf(ds)
	if opts.AnonymousIP == nil || opts.ImpossibleTravel == nil || opts.UnfamiliarFeatures == nil || opts.SessionReplay == nil {
		t.Fatalf("options %+v", opts)
	}
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	// Alice: a sign-in a day for 10 days from home, the last an hour ago,
	// in session 3f9c; the log lists the newest first.
	var history []SignIn
	for _, s := range slices.Backward(habit("alice@contoso.com", t0.Add(-9*day-time.Hour), 10, day)) {
		s.SessionID = "3f9c"
		history = append(history, s)
	}
	home := func() *SignIn {
		s := from(london, t0, "now", "alice@contoso.com")
		s.ASN = "20712"
		return &s
	}
	with := func(change func(s *SignIn)) *SignIn {
		s := home()
		change(s)
		return s
	}
	for _, c := range []struct {
		name    string
		attempt *SignIn
		history []SignIn
		opts    *RealtimeOptions
		level   string
		types   []string
	}{
		{"at home", home(), history, opts, "none", nil},
		{"at home, in flight: the code is not the outcome", with(func(s *SignIn) { s.Code, s.Success = 50074, false }), history, opts, "none", nil},
		{"from Tor", with(func(s *SignIn) { s.IP = netip.MustParseAddr("185.220.101.7") }), history, opts, "medium", []string{"anonymizedIPAddress"}},
		{"New York an hour after London, own laptop", with(func(s *SignIn) {
			s.Country, s.Lat, s.Lon, s.IP, s.ASN = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr(newYork.ip), "8075"
		}), history, opts, "medium", []string{"impossibleTravel"}},
		{"New York 6 hours after London", with(func(s *SignIn) {
			s.Time = s.Time.Add(5 * time.Hour)
			s.Country, s.Lat, s.Lon, s.IP, s.ASN = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr(newYork.ip), "8075"
		}), history, opts, "none", nil},
		{"New York an hour after London, a script", with(func(s *SignIn) {
			s.Country, s.Lat, s.Lon, s.IP, s.ASN = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr(newYork.ip), "8075"
			s.UserAgent = "python-requests/2.31.0"
		}), history, opts, "high", []string{"impossibleTravel", "unfamiliarFeatures"}},
		{"New York 6 hours after London, a script", with(func(s *SignIn) {
			s.Time = s.Time.Add(5 * time.Hour)
			s.Country, s.Lat, s.Lon, s.IP, s.ASN = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr(newYork.ip), "8075"
			s.UserAgent = "python-requests/2.31.0"
		}), history, opts, "medium", []string{"unfamiliarFeatures"}},
		{"a script from Tor in New York", with(func(s *SignIn) {
			s.Time = s.Time.Add(5 * time.Hour)
			s.Country, s.Lat, s.Lon, s.IP, s.ASN = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr("185.220.101.7"), "8075"
			s.UserAgent = "python-requests/2.31.0"
		}), history, opts, "medium", []string{"anonymizedIPAddress", "unfamiliarFeatures"}},
		{"the session from Tokyo", with(func(s *SignIn) {
			s.Country, s.Lat, s.Lon, s.IP, s.SessionID = tokyo.country, tokyo.lat, tokyo.lon, netip.MustParseAddr(tokyo.ip), "3f9c"
		}), history, opts, "high", []string{"impossibleTravel", "anomalousToken"}},
		{"a script during learning", with(func(s *SignIn) { s.UserAgent, s.Country, s.IP = "curl/8.5.0", "BR", netip.MustParseAddr("177.1.1.1") }),
			history[:4], opts, "none", nil},
		{"history oldest first", with(func(s *SignIn) {
			s.Country, s.Lat, s.Lon, s.IP, s.ASN = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr(newYork.ip), "8075"
		}), reversed(history), opts, "medium", []string{"impossibleTravel"}},
		{"someone else's history", with(func(s *SignIn) {
			s.User, s.UserID = "bob@contoso.com", "id-bob"
			s.Country, s.Lat, s.Lon, s.IP = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr(newYork.ip)
		}), history, opts, "none", nil},
		{"no rules", with(func(s *SignIn) { s.IP = netip.MustParseAddr("185.220.101.7") }), history, &RealtimeOptions{}, "none", nil},
		{"no options", home(), history, nil, "none", nil},
	} {
		got := AssessSignIn(c.attempt, c.history, c.opts)
		if got.Level != c.level || !slices.Equal(got.EventTypes, c.types) || (c.level == "none") != (got.Detail == "") {
			t.Errorf("%s: %+v, want %s %v", c.name, got, c.level, c.types)
		}
	}
	// The detail says what was seen.
	got := AssessSignIn(with(func(s *SignIn) {
		s.Country, s.Lat, s.Lon, s.IP, s.UserAgent = newYork.country, newYork.lat, newYork.lon, netip.MustParseAddr(newYork.ip), "python-requests/2.31.0"
	}), history, opts)
	for _, want := range []string{"impossible travel: 5570 km from GB", "(5570 km/h)", "unfamiliar properties: country US", "client python-requests"} {
		if !strings.Contains(got.Detail, want) {
			t.Errorf("detail %q lacks %q", got.Detail, want)
		}
	}
}

// TestAssessSignInAgreesWithDetectors: for every sign-in of a stream, the
// real-time verdict from the sign-ins before it is the detectors'.
func TestAssessSignInAgreesWithDetectors(t *testing.T) {
	t.Parallel()
	evs := attackStream(60, 21)
	travel := newTravel()
	travel.Window = time.Nanosecond // every impossible journey, as real time judges every attempt
	ds := []Detector{travel, defaultOf[*UnfamiliarFeatures](), newReplay()}
	opts := RealtimeOptionsOf(ds)
	// The detector judges unfamiliar properties once it has watched 14
	// days; in real time the history is all there is.
	began := evs[0].Time
	byUser := map[string][]SignIn{}
	checked := 0
	for i := range evs {
		s := &evs[i]
		var raised []string
		for _, d := range ds {
			d.Observe(s, func(a Alert) { raised = append(raised, RiskEventType(a.Detector)) })
		}
		hist := slices.Clone(byUser[s.User])
		slices.Reverse(hist)
		got := AssessSignIn(s, hist, opts)
		if s.Success {
			want := raised
			if s.Time.Sub(began) < 14*24*time.Hour {
				want = slices.DeleteFunc(slices.Clone(raised), func(e string) bool { return e == "unfamiliarFeatures" })
				got.EventTypes = slices.DeleteFunc(got.EventTypes, func(e string) bool { return e == "unfamiliarFeatures" })
			}
			// A session is raised once an hour; real time judges every
			// attempt.
			if slices.Contains(got.EventTypes, "anomalousToken") && !slices.Contains(want, "anomalousToken") {
				want = append(want, "anomalousToken")
			}
			slices.Sort(want)
			slices.Sort(got.EventTypes)
			if !slices.Equal(got.EventTypes, want) {
				t.Fatalf("%s at %v: real time %v, detectors %v", s.ID, s.Time, got.EventTypes, want)
			}
			checked += len(want)
		}
		byUser[s.User] = append(byUser[s.User], *s)
	}
	if checked < 20 {
		t.Errorf("only %d detections compared", checked)
	}
}

func reversed(s []SignIn) []SignIn {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// TestAssessSignInConcurrently: the sign-in service assesses attempts on
// many goroutines, the first ones parsing the lists (run with -race).
func TestAssessSignInConcurrently(t *testing.T) {
	t.Parallel()
	ds := DefaultDetectors()
	defaultOf[*AnonymousIP](ds...).List = []string{"185.220.101.0/24"}
	defaultOf[*SessionReplay](ds...).ExemptApps = []string{"app-1"}
	defaultOf[*ImpossibleTravel](ds...).ExemptCIDRs = []string{"10.0.0.0/8"}
	opts := RealtimeOptionsOf(ds)
	attempt := from(london, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), "a", "alice@contoso.com")
	attempt.IP, attempt.SessionID = netip.MustParseAddr("185.220.101.7"), "s"
	done := make(chan SignInRiskResult)
	for range 8 {
		go func() { done <- AssessSignIn(&attempt, nil, opts) }()
	}
	for range 8 {
		if r := <-done; r.Level != "medium" {
			t.Errorf("%+v", r)
		}
	}
}
