package detect

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"
)

// Places the tests sign in from.
type city struct {
	country  string
	lat, lon float64
	ip       string
}

var (
	london    = city{"GB", 51.5074, -0.1278, "81.2.69.160"}
	newYork   = city{"US", 40.7128, -74.0060, "40.77.182.32"}
	frankfurt = city{"DE", 50.1109, 8.6821, "145.100.7.1"}
	paris     = city{"FR", 48.8566, 2.3522, "90.84.1.1"}
	tokyo     = city{"JP", 35.6762, 139.6503, "133.11.1.1"}
)

// from is a successful interactive sign-in of user in c.
func from(c city, at time.Time, id, user string) SignIn {
	s := signIn(at, id, user, c.ip, 0)
	s.UserID, s.Country, s.Lat, s.Lon, s.HasGeo = "id-"+user, c.country, c.lat, c.lon, true
	s.UserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	return s
}

func TestDistance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b city
		km   float64
	}{
		{london, newYork, 5570}, {frankfurt, paris, 479}, {london, tokyo, 9560}, {london, london, 0},
	} {
		if got := distanceKm(c.a.lat, c.a.lon, c.b.lat, c.b.lon); math.Abs(got-c.km) > 0.01*c.km+0.001 {
			t.Errorf("%s to %s: %.0f km, want about %.0f", c.a.country, c.b.country, got, c.km)
		}
	}
	// Antipodes: half the Earth's circumference, no NaN.
	if got := distanceKm(0, 0, 0, 180); math.Abs(got-maxDistanceKm) > 1 {
		t.Errorf("antipodes: %v", got)
	}
}

// defaultOf returns the default detector of type T.
func defaultOf[T Detector](ds ...Detector) T {
	if ds == nil {
		ds = DefaultDetectors()
	}
	for _, d := range ds {
		if d, ok := d.(T); ok {
			return d
		}
	}
	panic("no such default detector")
}

func newTravel() *ImpossibleTravel { return defaultOf[*ImpossibleTravel]() }

// TestImpossibleTravel: faster than 1000 km/h over at least 500 km is
// raised; just slower, shorter, exempt, without coordinates,
// non-interactive or failed is not.
func TestImpossibleTravel(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	km := distanceKm(london.lat, london.lon, newYork.lat, newYork.lon)
	hours := func(f float64) time.Duration { return time.Duration(f * float64(time.Hour)) }
	atSpeed := func(kmh float64) time.Duration { return hours(km / kmh) }
	for _, c := range []struct {
		name   string
		second func(SignIn) SignIn
		gap    time.Duration
		exempt []string
		want   bool
	}{
		{"just faster than 1000 km/h", nil, atSpeed(1010), nil, true},
		{"just slower", nil, atSpeed(990), nil, false},
		{"at once", nil, 0, nil, true},
		{"second from an exempt VPN egress", nil, time.Hour, []string{"40.77.182.0/24"}, false},
		{"first from an exempt address", nil, time.Hour, []string{"81.2.69.160"}, false},
		{"no coordinates", func(s SignIn) SignIn { s.HasGeo = false; return s }, time.Hour, nil, false},
		{"non-interactive", func(s SignIn) SignIn { s.Interactive = false; return s }, time.Hour, nil, false},
		{"failed", func(s SignIn) SignIn { s.Code, s.Success = codeWrongPassword, false; return s }, time.Hour, nil, false},
	} {
		d := newTravel()
		d.ExemptCIDRs = c.exempt
		b := from(newYork, t0.Add(c.gap), "b", "alice@contoso.com")
		if c.second != nil {
			b = c.second(b)
		}
		got := Run([]SignIn{from(london, t0, "a", "alice@contoso.com"), b}, []Detector{d})
		if c.want != (len(got) == 1) || len(got) > 1 {
			t.Errorf("%s: %+v", c.name, got)
			continue
		}
		if c.want {
			a := got[0]
			if a.Detector != "impossibleTravel" || a.Severity != "medium" || !slices.Equal(a.Evidence, []string{"a", "b"}) ||
				a.User != "alice@contoso.com" || a.IP.String() != newYork.ip || !a.First.Equal(t0) || a.MITRE[0] != "T1078" {
				t.Errorf("%s: alert %+v", c.name, a)
			}
		}
	}

	// Shorter than 500 km is never raised, however fast; 500 km and more is.
	d := newTravel()
	if got := Run([]SignIn{from(frankfurt, t0, "a", "bob@contoso.com"), from(paris, t0.Add(time.Minute), "b", "bob@contoso.com")}, []Detector{d}); len(got) != 0 {
		t.Errorf("Frankfurt to Paris (479 km) in a minute: %+v", got)
	}
	d = newTravel()
	d.MinDistanceKm = 470
	if got := Run([]SignIn{from(frankfurt, t0, "a", "bob@contoso.com"), from(paris, t0.Add(time.Minute), "b", "bob@contoso.com")}, []Detector{d}); len(got) != 1 {
		t.Errorf("Frankfurt to Paris with a 470 km minimum: %+v", got)
	}

	// Each sign-in is compared with the previous one: London, then New
	// York 6 hours later (possible), then Tokyo an hour after that
	// (impossible from New York), and one alert a day: back to New York
	// an hour later is not raised again.
	d = newTravel()
	got := Run([]SignIn{
		from(london, t0, "a", "carol@contoso.com"), from(newYork, t0.Add(6*time.Hour), "b", "carol@contoso.com"),
		from(tokyo, t0.Add(7*time.Hour), "c", "carol@contoso.com"), from(newYork, t0.Add(8*time.Hour), "d", "carol@contoso.com"),
		from(newYork, t0.Add(32*time.Hour), "e", "carol@contoso.com"), from(tokyo, t0.Add(33*time.Hour), "f", "carol@contoso.com"),
	}, []Detector{d})
	if len(got) != 2 || !slices.Equal(got[0].Evidence, []string{"b", "c"}) || !slices.Equal(got[1].Evidence, []string{"e", "f"}) {
		t.Errorf("a journey: %+v", got)
	}
	// Another user's sign-ins are not compared.
	d = newTravel()
	if got := Run([]SignIn{from(london, t0, "a", "dave@contoso.com"), from(newYork, t0.Add(time.Minute), "b", "erin@contoso.com")}, []Detector{d}); len(got) != 0 {
		t.Errorf("two users: %+v", got)
	}
}

func TestImpossibleTravelValidate(t *testing.T) {
	t.Parallel()
	d := newTravel()
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	d.ExemptCIDRs = []string{"10.0.0.0/8", "10.1.2/24"}
	if err := d.Validate(); err == nil || err.Error() != `exemptCIDRs[1]: "10.1.2/24" is not an address or CIDR` {
		t.Errorf("bad CIDR: %v", err)
	}
	d = newTravel()
	d.SpeedKmh = 0
	if err := d.Validate(); err == nil {
		t.Error("speed 0 accepted")
	}
}

// TestStateIsSwept: after 100,000 users sign in (successes with
// coordinates and sessions, failures with locations, anonymous
// addresses), and time passes beyond every window, each detector's
// per-entity state is swept down to the entities of the latest sign-in —
// the detectors as DefaultDetectors makes them (travel and unfamiliar
// properties sharing their users), and each on its own.
func TestStateIsSwept(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		users int
		ds    []Detector
	}{
		{"together", 100_000, slices.DeleteFunc(DefaultDetectors(), func(d Detector) bool {
			switch d.(type) {
			case *ImpossibleTravel, *UnfamiliarFeatures, *AnonymousIP, *SessionReplay, *DistributedPasswordCracking:
				return false
			}
			return true
		})},
		{"on their own", 20_000, []Detector{newTravel(), defaultOf[*UnfamiliarFeatures](), defaultOf[*AnonymousIP](), newReplay(),
			defaultOf[*DistributedPasswordCracking]()}},
	} {
		ds := c.ds
		anon := defaultOf[*AnonymousIP](ds...)
		anon.List = []string{"10.0.0.0/8"}
		raise := func(Alert) {}
		for i := range c.users {
			u := fmt.Sprintf("user%06d@contoso.com", i)
			s := from(london, t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("s", i), u)
			s.IP = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
			s.SessionID = "session-" + u
			f := s
			f.Code, f.Success, f.City = codeWrongPassword, false, "London"
			for _, d := range ds {
				d.Observe(&s, raise)
				d.Observe(&f, raise)
			}
		}
		sizes := func() map[string]int {
			return map[string]int{
				"impossibleTravel":            len(defaultOf[*ImpossibleTravel](ds...).users.m),
				"unfamiliarFeatures":          len(defaultOf[*UnfamiliarFeatures](ds...).users.m),
				"anonymousIP":                 len(anon.raised),
				"sessionReplay":               len(defaultOf[*SessionReplay](ds...).bySession),
				"distributedPasswordCracking": len(defaultOf[*DistributedPasswordCracking](ds...).byUser),
			}
		}
		for name, n := range sizes() {
			if n != c.users {
				t.Fatalf("%s: %s tracks %d entities, want %d", c.name, name, n, c.users)
			}
		}
		// 15 days later (beyond the longest window, unfamiliarFeatures' 14
		// days of memory) one more user signs in, twice, a day apart.
		late := from(london, t0.Add(15*24*time.Hour), "late", "late@contoso.com")
		for _, d := range ds {
			d.Observe(&late, raise)
		}
		late.Time = late.Time.Add(25 * time.Hour)
		for _, d := range ds {
			d.Observe(&late, raise)
		}
		for name, n := range sizes() {
			if n > 1 {
				t.Errorf("%s: %s still tracks %d entities", c.name, name, n)
			}
		}
	}
}

func TestRecordID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		compact bool
	}{
		{"36658c78-02d9-4d8f-84ee-5ca4a3fdefef", true},
		{"36658C78-02D9-4D8F-84EE-5CA4A3FDEFEF", false}, // kept as written
		{"00000000-0000-0000-0000-000000000000", false},
		{"36658c78-02d9-4d8f-84ee-5ca4a3fdefeg", false},
		{"36658c7802d94d8f84ee5ca4a3fdefef", false},
		{"e", false},
		{"", false},
	} {
		id := idOf(c.in)
		if id.String() != c.in || (id.other == "") != (c.compact || c.in == "") {
			t.Errorf("%q: %+v, %q", c.in, id, id.String())
		}
	}
	if size := unsafe.Sizeof(userState{}); size > 192 {
		t.Errorf("a user's state is %d bytes", size)
	}
}
