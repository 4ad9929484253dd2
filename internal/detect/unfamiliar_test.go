package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"
)

const (
	uaWindowsChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaIPhoneSafari  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaMacFirefox    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaLinuxEdge     = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)

func TestUserAgentFamily(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ ua, os, browser string }{
		{uaWindowsChrome, "windows", "chrome"},
		{uaIPhoneSafari, "ios", "safari"},
		{uaMacFirefox, "macos", "firefox"},
		{uaLinuxEdge, "linux", "edge"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "android", "chrome"},
		{"AuthenticatorSSOExtension/1 CFNetwork/1496.0.7 Darwin/23.5.0 ;iPhone", "ios", "AuthenticatorSSOExtension"},
		{"python-requests/2.28.1", "", "python-requests"},
		{"Microsoft Office/16.0", "", "Microsoft Office"},
		{"BAV2ROPC", "", "BAV2ROPC"},
		{"", "", ""},
	} {
		if os, browser := userAgentFamily(c.ua); os != c.os || browser != c.browser {
			t.Errorf("%q: %q, %q; want %q, %q", c.ua, os, browser, c.os, c.browser)
		}
	}
	// Entra's deviceDetail names, when a record has no User-Agent.
	a := SignIn{OS: "Windows 10", Browser: "Edge 90.0.818"}
	b := SignIn{UserAgent: uaLinuxEdge}
	c := SignIn{UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/131.0.0.0"}
	if pa, pb, pc := propsOf(&a, nil), propsOf(&b, nil), propsOf(&c, nil); pa[propClient] != pb[propClient] || pa[propDevice] != pc[propDevice] || pa[propDevice] == pb[propDevice] {
		t.Errorf("deviceDetail and User-Agent families differ: %v %v %v", pa, pb, pc)
	}
	if size := unsafe.Sizeof(profile{}); size > 128 {
		t.Errorf("a profile is %d bytes", size)
	}
}

// habit is n sign-ins of a user from t0, one every step, from home
// (London, a Windows laptop with Chrome).
func habit(user string, t0 time.Time, n int, step time.Duration) []SignIn {
	var out []SignIn
	for i := range n {
		at := t0.Add(time.Duration(i) * step)
		s := from(london, at, fmt.Sprintf("%s-%d", user, at.Unix()), user)
		s.ASN = "20712"
		out = append(out, s)
	}
	return out
}

// TestUnfamiliarFeatures: after the learning period, a sign-in new both in
// where and in what it comes from is raised; a traveller with their own
// laptop, a new phone at home, and anything during learning are not.
func TestUnfamiliarFeatures(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	// The detector judges once it has watched for its 14 days of memory:
	// an unrelated sign-in starts the stream 14 days early.
	early := signIn(t0.Add(-14*24*time.Hour), "early", "someone@contoso.com", "192.0.2.1", 0)
	attacker := func(at time.Time) SignIn {
		s := from(tokyo, at, "x", "alice@contoso.com")
		s.ASN, s.UserAgent = "2516", "python-requests/2.31.0"
		return s
	}
	run := func(evs ...SignIn) []Alert {
		return Run(append([]SignIn{early}, evs...), []Detector{defaultOf[*UnfamiliarFeatures]()})
	}
	day := 24 * time.Hour
	// 10 sign-ins over 10 days, then the attacker: every known property
	// (country, network, /16, device, client) is new — medium.
	alice := func(t time.Time, n int, step time.Duration) []SignIn { return habit("alice@contoso.com", t, n, step) }
	got := run(append(alice(t0, 10, day), attacker(t0.Add(10*day)))...)
	if len(got) != 1 || got[0].Severity != "medium" || got[0].Detector != "unfamiliarFeatures" || !slices.Equal(got[0].Evidence, []string{"x"}) ||
		got[0].MITRE[0] != "T1078" || got[0].UserID != "id-alice@contoso.com" {
		t.Fatalf("attacker after learning: %+v", got)
	}
	if want := "alice@contoso.com signed in with properties new for them: country JP, network AS2516, address 133.11.1.1, client python-requests"; got[0].Summary != want {
		t.Errorf("summary %q", got[0].Summary)
	}

	for _, c := range []struct {
		name string
		evs  []SignIn
		want string // severity, "" for none
	}{
		{"9 sign-ins over 9 days: one short of 10", append(alice(t0, 9, day), attacker(t0.Add(10*day))), ""},
		{"10 sign-ins, the first 4 days before: learning", append(alice(t0.Add(6*day), 10, 9*time.Hour), attacker(t0.Add(10*day))), ""},
		{"10 sign-ins, the first 5 days before", append(alice(t0.Add(5*day), 1, day),
			append(alice(t0.Add(9*day), 9, time.Hour), attacker(t0.Add(10*day)))...), "medium"},
		{"travelling with the own laptop", append(alice(t0, 10, day), func() SignIn {
			s := from(tokyo, t0.Add(10*day), "x", "alice@contoso.com")
			s.ASN = "2516"
			return s
		}()), ""},
		{"a new phone at home", append(alice(t0, 10, day), func() SignIn {
			s := from(london, t0.Add(10*day), "x", "alice@contoso.com")
			s.ASN, s.UserAgent = "20712", uaIPhoneSafari
			return s
		}()), ""},
		{"a new phone on the mobile network at home: most properties new", append(alice(t0, 10, day), func() SignIn {
			s := from(london, t0.Add(10*day), "x", "alice@contoso.com")
			s.ASN, s.UserAgent, s.IP = "5378", uaIPhoneSafari, netip.MustParseAddr("31.94.1.1")
			return s
		}()), "low"},
		{"half the known properties new: not most", append(alice(t0, 10, day), func() SignIn {
			s := from(london, t0.Add(10*day), "x", "alice@contoso.com") // no ASN: 4 properties known
			s.UserAgent, s.IP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0", netip.MustParseAddr("31.94.1.1")
			return s
		}()), ""},
		{"three of four known properties new", append(alice(t0, 10, day), func() SignIn {
			s := from(london, t0.Add(10*day), "x", "alice@contoso.com")
			s.UserAgent, s.IP = uaLinuxEdge, netip.MustParseAddr("31.94.1.1")
			return s
		}()), "low"},
		{"back after 14 days away: learning again", append(alice(t0.Add(-30*day), 10, day), attacker(t0.Add(-7*day))), ""},
		{"back after 13 days away", append(alice(t0.Add(-30*day), 10, day), attacker(t0.Add(-8*day))), "medium"},
		{"a failed attempt", append(alice(t0, 10, day), func() SignIn {
			s := attacker(t0.Add(10 * day))
			s.Code, s.Success = codeWrongPassword, false
			return s
		}()), ""},
	} {
		got := run(c.evs...)
		if c.want == "" && len(got) != 0 || c.want != "" && (len(got) != 1 || got[0].Severity != c.want) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}

	// What is seen is learned: the attacker's second sign-in is familiar.
	if got := run(append(alice(t0, 10, day), attacker(t0.Add(10*day)), attacker(t0.Add(10*day+time.Hour)))...); len(got) != 1 {
		t.Errorf("the attacker twice: %+v", got)
	}
	// Without 14 days of watching the stream, nothing is judged.
	if got := Run(append(alice(t0, 10, day), attacker(t0.Add(10*day))), []Detector{defaultOf[*UnfamiliarFeatures]()}); len(got) != 0 {
		t.Errorf("judged within the detector's first 14 days: %+v", got)
	}
}

// TestProfileForgets: a value not seen for 14 days is unfamiliar again;
// the 4 most recent values of a property are remembered.
func TestProfileForgets(t *testing.T) {
	t.Parallel()
	p := newProfile(100)
	seen := func(country string, day uint16) {
		s := SignIn{Country: country}
		pr := propsOf(&s, nil)
		p.learn(&pr, day)
	}
	isNew := func(country string, day uint16) bool {
		s := SignIn{Country: country}
		pr := propsOf(&s, nil)
		_, fresh := p.compare(&pr, day, 14)
		return fresh != 0
	}
	seen("GB", 100)
	seen("FR", 101)
	if isNew("GB", 113) || !isNew("GB", 114) || isNew("FR", 114) {
		t.Error("memory of 14 days")
	}
	seen("DE", 102)
	seen("NL", 103)
	seen("BE", 104) // GB, the least recent, is pushed out
	if !isNew("GB", 105) || isNew("FR", 105) || isNew("BE", 105) {
		t.Errorf("4 most recent: %v", p.val[propCountry])
	}
	seen("FR", 106) // seen again: first
	if p.val[propCountry][0] != propsOf(&SignIn{Country: "FR"}, nil)[propCountry] || p.day[propCountry][0] != 106 {
		t.Errorf("most recent first: %v %v", p.val[propCountry], p.day[propCountry])
	}
	if p.count != 6 || p.start != 100 || p.last != 106 {
		t.Errorf("count %d, start %d, last %d", p.count, p.start, p.last)
	}
}
