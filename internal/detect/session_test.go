package detect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func newReplay() *SessionReplay { return defaultOf[*SessionReplay]() }

// TestSessionReplay: one session used from two far-apart places within
// the hour is raised — high with coordinates, medium on networks alone;
// the same network, a near place, a later use, a dual-stack switch,
// refresh tokens and exempt addresses or applications are not.
func TestSessionReplay(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	use := func(c city, at time.Duration, id string) SignIn {
		s := from(c, t0.Add(at), id, "alice@contoso.com")
		s.SessionID = "3f9c"
		return s
	}
	noGeo := func(s SignIn) SignIn { s.HasGeo = false; return s }
	ip := func(s SignIn, a string) SignIn { s.IP = netip.MustParseAddr(a); return s }
	for _, c := range []struct {
		name   string
		a, b   SignIn
		adjust func(*SessionReplay)
		want   string
	}{
		{"London then Tokyo 10 minutes later", use(london, 0, "a"), use(tokyo, 10*time.Minute, "b"), nil, "high"},
		{"at 60 minutes", use(london, 0, "a"), use(tokyo, time.Hour, "b"), nil, "high"},
		{"at 61 minutes", use(london, 0, "a"), use(tokyo, 61*time.Minute, "b"), nil, ""},
		{"Frankfurt then Paris: 479 km", use(frankfurt, 0, "a"), use(paris, time.Minute, "b"), nil, ""},
		{"Frankfurt then Paris, 470 km minimum", use(frankfurt, 0, "a"), use(paris, time.Minute, "b"),
			func(d *SessionReplay) { d.MinDistanceKm = 470 }, "high"},
		{"same /16, far on the map", use(london, 0, "a"), ip(use(tokyo, time.Minute, "b"), "81.2.1.1"), nil, ""},
		{"other /16, no coordinates", noGeo(use(london, 0, "a")), noGeo(use(tokyo, time.Minute, "b")), nil, "medium"},
		{"same /16, no coordinates", noGeo(use(london, 0, "a")), noGeo(ip(use(london, time.Minute, "b"), "81.2.200.1")), nil, ""},
		{"IPv4 then IPv6, no coordinates", noGeo(use(london, 0, "a")), noGeo(ip(use(london, time.Minute, "b"), "2001:db8::1")), nil, ""},
		{"IPv4 then IPv6, far", use(london, 0, "a"), ip(use(tokyo, time.Minute, "b"), "2001:db8::1"), nil, "high"},
		{"other sessions", use(london, 0, "a"), func() SignIn { s := use(tokyo, time.Minute, "b"); s.SessionID = "77aa"; return s }(), nil, ""},
		{"failed use", use(london, 0, "a"), func() SignIn {
			s := use(tokyo, time.Minute, "b")
			s.Code, s.Success = 53003, false
			return s
		}(), nil, ""},
		{"refresh tokens", func() SignIn { s := use(london, 0, "a"); s.Interactive = false; return s }(),
			func() SignIn { s := use(tokyo, time.Minute, "b"); s.Interactive = false; return s }(), nil, ""},
		{"refresh tokens, when asked", func() SignIn { s := use(london, 0, "a"); s.Interactive = false; return s }(),
			func() SignIn { s := use(tokyo, time.Minute, "b"); s.Interactive = false; return s }(),
			func(d *SessionReplay) { d.NonInteractive = true }, "high"},
		{"exempt egress", use(london, 0, "a"), use(tokyo, time.Minute, "b"), func(d *SessionReplay) { d.ExemptCIDRs = []string{"133.11.0.0/16"} }, ""},
		{"exempt application", use(london, 0, "a"), func() SignIn { s := use(tokyo, time.Minute, "b"); s.AppID = "app-1"; return s }(),
			func(d *SessionReplay) { d.ExemptApps = []string{"app-1"} }, ""},
		{"token id when no session id", func() SignIn { s := use(london, 0, "a"); s.SessionID, s.TokenID = "", "tok"; return s }(),
			func() SignIn { s := use(tokyo, time.Minute, "b"); s.SessionID, s.TokenID = "", "tok"; return s }(), nil, "high"},
	} {
		d := newReplay()
		if c.adjust != nil {
			c.adjust(d)
		}
		got := Run([]SignIn{c.a, c.b}, []Detector{d})
		if c.want == "" && len(got) != 0 || c.want != "" && (len(got) != 1 || got[0].Severity != c.want) {
			t.Errorf("%s: %+v", c.name, got)
			continue
		}
		if c.want != "" && (!slices.Equal(got[0].Evidence, []string{"a", "b"}) || got[0].Detector != "sessionReplay" ||
			!slices.Equal(got[0].MITRE, []string{"T1550", "T1078"}) || got[0].IP != c.b.IP || !got[0].First.Equal(c.a.Time)) {
			t.Errorf("%s: alert %+v", c.name, got[0])
		}
	}
	// Back and forth within the hour: raised once; again after the hour.
	d := newReplay()
	got := Run([]SignIn{use(london, 0, "a"), use(tokyo, time.Minute, "b"), use(london, 2*time.Minute, "c"),
		use(tokyo, 30*time.Minute, "d"), use(london, 62*time.Minute, "e")}, []Detector{d})
	if len(got) != 2 || !slices.Equal(got[0].Evidence, []string{"a", "b"}) || !slices.Equal(got[1].Evidence, []string{"d", "e"}) {
		t.Errorf("back and forth: %+v", got)
	}
}

// pantherCases reads the Panther rule tests of the sign-in file whose
// rule is rule.
func pantherCases(t *testing.T, rule string) []struct {
	name  string
	match bool
	s     SignIn
} {
	t.Helper()
	b, err := os.ReadFile("testdata/logs/panther/panther_azure_signin_tests.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var out []struct {
		name  string
		match bool
		s     SignIn
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var tc struct {
			Rule  string          `json:"rule_id"`
			Name  string          `json:"test_name"`
			Match bool            `json:"expected_match"`
			Log   json.RawMessage `json:"log"`
		}
		if err := json.Unmarshal(sc.Bytes(), &tc); err != nil {
			t.Fatal(err)
		}
		if tc.Rule != rule {
			continue
		}
		got, err := ReadSignIns(bytes.NewReader(tc.Log))
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %v, %d sign-ins", tc.Name, err, len(got))
		}
		out = append(out, struct {
			name  string
			match bool
			s     SignIn
		}{tc.Name, tc.Match, got[0]})
	}
	return out
}

// TestPantherGraphSessionMultipleIPs holds sessionReplay to Panther's
// GraphSessionMultipleIPs tests. Panther's rule matches a successful
// interactive sign-in with a session id and alerts when one session shows
// 2 addresses within 60 minutes (its positive test mocks the session's
// other addresses as 203.0.113.45 and 198.51.100.88). The analogue here:
// each test event preceded, 10 minutes before, by the same session from
// 203.0.113.45 (another /16, no coordinates) — an alert exactly when
// Panther's verdict is a match. Panther's rule is about Microsoft Graph
// and exempts Microsoft's own applications; sessionReplay watches every
// application and exempts the ExemptApps configured: the Office 365
// application here, as in Panther's list. Each event alone is no alert
// (one address).
func TestPantherGraphSessionMultipleIPs(t *testing.T) {
	t.Parallel()
	cases := pantherCases(t, "Azure.Audit.GraphSessionMultipleIPs")
	if len(cases) != 3 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		if c.s.SessionID == "" || c.s.User == "" || !c.s.Success {
			t.Fatalf("%s: read %+v", c.name, c.s)
		}
		d := newReplay()
		d.ExemptApps = []string{"00000003-0000-0ff1-ce00-000000000000"} // Office 365, in Panther's list
		earlier := c.s
		earlier.ID, earlier.Time, earlier.IP = "earlier", c.s.Time.Add(-10*time.Minute), netip.MustParseAddr("203.0.113.45")
		got := Run([]SignIn{earlier, c.s}, []Detector{d})
		if c.match != (len(got) == 1) || len(got) > 1 {
			t.Errorf("%s: expected_match %v, alerts %+v", c.name, c.match, got)
		}
		if c.match && (got[0].Severity != "medium" || got[0].IP.String() != "5.5.5.5" || !slices.Equal(got[0].Evidence, []string{"earlier", c.s.ID})) {
			t.Errorf("%s: %+v", c.name, got[0])
		}
		if got := Run([]SignIn{c.s}, []Detector{newReplay()}); len(got) != 0 {
			t.Errorf("%s alone: %+v", c.name, got)
		}
	}
}

// TestPantherSignInsWithSessions: Panther's other sign-in tests, several
// of whose events carry a session or token id (many failed sign-ins,
// legacy authentication, risk-level passthrough — rules the sign-in
// detectors here are no analogue of), replayed as one stream with the
// GraphSessionMultipleIPs ones, show no session used from two networks,
// no travel, no anonymous address, no distributed cracking: nothing is
// raised.
func TestPantherSignInsWithSessions(t *testing.T) {
	t.Parallel()
	var all []SignIn
	withSession := 0
	for _, rule := range []string{"Azure.Audit.ManyFailedSignIns", "Azure.Audit.ExcessiveAccountLockouts", "Azure.Audit.RiskLevelPassthrough",
		"Azure.Audit.HighRiskSignIn", "Azure.Audit.LegacyAuth", "Azure.Audit.GraphSessionMultipleIPs", "Azure.Audit.ROPCLoginNoMFA",
		"Azure.Audit.DeviceCodeBrokerClient"} {
		for _, c := range pantherCases(t, rule) {
			if sessionOf(&c.s) != "" {
				withSession++
			}
			all = append(all, c.s)
		}
	}
	if len(all) != 22 || withSession != 13 {
		t.Fatalf("%d sign-ins, %d with a session or token id", len(all), withSession)
	}
	ds := []Detector{newTravel(), defaultOf[*UnfamiliarFeatures](), defaultOf[*AnonymousIP](), newReplay(), defaultOf[*DistributedPasswordCracking]()}
	if got := Run(all, ds); len(got) != 0 {
		t.Errorf("%+v", got)
	}
}

// TestSignInFields reads the fields the sign-in detectors need from both
// export shapes.
func TestSignInFields(t *testing.T) {
	t.Parallel()
	adele := readFile(t, "testdata/logs/sentinel-training-lab/sign-in_adelete.csv")
	s := adele[0]
	if s.State != "Tel Aviv" || s.City != "Azor" || s.OS != "Windows 10" || s.Browser != "Edge 90.0.818" || s.DeviceID != "" {
		t.Errorf("Log Analytics row: %+v", s)
	}
	for _, c := range pantherCases(t, "Azure.Audit.DeviceCodeBrokerClient") {
		if c.match && (c.s.DeviceID != "device-attacker-456" || c.s.OS != "Windows 10" || c.s.Browser != "Chrome 120") {
			t.Errorf("diagnostic record: %+v", c.s)
		}
	}
	for _, c := range pantherCases(t, "Azure.Audit.LegacyAuth") {
		if c.s.User != "" && (c.s.TokenID != "hhhhhhhhhhhhhhhhhhhhhh" || c.s.State != "Virginia" || c.s.ASN != "1234") {
			t.Errorf("diagnostic record: %+v", c.s)
		}
	}
	for _, c := range pantherCases(t, "Azure.Audit.GraphSessionMultipleIPs") {
		if !strings.HasPrefix(c.s.SessionID, "session-") && c.s.SessionID != "00baf379-e510-523f-1c0e-346163d4a768" {
			t.Errorf("session id %q", c.s.SessionID)
		}
	}
	// Verity's own sign-in log.
	got, err := ReadSignIns(strings.NewReader(`{"id":"e1","createdDateTime":"2026-11-27T09:00:00Z","userPrincipalName":"Alice@Contoso.com",` +
		`"ipAddress":"81.2.69.160","location":{"city":"London","state":"England","countryOrRegion":"GB","geoCoordinates":{"latitude":51.5,"longitude":-0.09}},` +
		`"sessionId":"c2Vzc2lvbg","isInteractive":true,"status":{"errorCode":0},"userAgent":"curl/8.5.0"}`))
	if err != nil || len(got) != 1 {
		t.Fatal(err)
	}
	if s := got[0]; s.SessionID != "c2Vzc2lvbg" || s.State != "England" || s.City != "London" || !s.HasGeo || s.User != "alice@contoso.com" || !s.Success {
		t.Errorf("Verity record: %+v", s)
	}
}
