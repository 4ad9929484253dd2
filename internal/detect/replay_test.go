package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// attackStream is days of sign-ins of users, three a day from home (each
// user's city, network and browser, one session a day, now and then a
// wrong password), with attacks on about one user-day in 40: a sign-in
// from the other side of the world an hour after one from home, one from
// a Tor exit, the day's session used from far away, a script from another
// country, and 35 wrong passwords from three countries.
func attackStream(users, days int) []SignIn {
	r := rand.New(rand.NewPCG(7, 8))
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	cities := []city{london, frankfurt, newYork, tokyo, paris}
	asn := map[string]string{"GB": "20712", "DE": "3320", "US": "7018", "JP": "2516", "FR": "3215"}
	uas := []string{uaWindowsChrome, uaIPhoneSafari, uaMacFirefox, uaLinuxEdge}
	var out []SignIn
	add := func(s SignIn) {
		s.ID = fmt.Sprintf("e%06d", len(out))
		out = append(out, s)
	}
	for u := range users {
		user := fmt.Sprintf("user%03d@contoso.com", u)
		home, ua := cities[u%len(cities)], uas[u%len(uas)]
		far := tokyo
		if home == tokyo {
			far = london
		}
		ip := netip.AddrFrom4([4]byte{byte(20 + u%5), byte(u), 1, byte(u)})
		for d := range days {
			at := func(h time.Duration) time.Time {
				return t0.Add(time.Duration(d)*24*time.Hour + h + time.Duration(r.IntN(600))*time.Second)
			}
			session := fmt.Sprintf("%s-%d", user, d)
			for _, h := range []time.Duration{8, 13, 18} {
				s := from(home, at(h*time.Hour), "", user)
				s.IP, s.ASN, s.UserAgent, s.SessionID = ip, asn[home.country], ua, session
				if r.IntN(12) == 0 {
					s.Code, s.Success = codeWrongPassword, false
				}
				add(s)
			}
			switch r.IntN(40) {
			case 0: // the other side of the world an hour later, own device
				s := from(far, at(14*time.Hour+20*time.Minute), "", user)
				s.ASN, s.UserAgent = asn[far.country], ua
				add(s)
			case 1: // a Tor exit
				s := from(home, at(15*time.Hour), "", user)
				s.IP, s.HasGeo, s.UserAgent = netip.AddrFrom4([4]byte{185, 220, 101, byte(u)}), false, ua
				add(s)
			case 2: // the day's session from far away
				s := from(far, at(13*time.Hour+20*time.Minute), "", user)
				s.ASN, s.UserAgent, s.SessionID = asn[far.country], ua, session
				add(s)
			case 3: // a script from Brazil
				s := from(home, at(21*time.Hour), "", user)
				s.IP, s.HasGeo, s.Country, s.ASN, s.UserAgent = netip.AddrFrom4([4]byte{177, 1, byte(u), 1}), false, "BR", "28573", "python-requests/2.31.0"
				add(s)
			case 4: // wrong passwords from three countries
				for i := range 35 {
					c := []city{newYork, tokyo, frankfurt}[i%3]
					s := from(c, at(time.Duration(i)*5*time.Minute), "", user)
					s.Code, s.Success, s.IP = codeWrongPassword, false, netip.AddrFrom4([4]byte{45, byte(i), byte(u), 9})
					add(s)
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b SignIn) int { return a.Time.Compare(b.Time) })
	return out
}

// withTorList returns the default detectors, the anonymous-address one
// with a list of Tor exits.
func withTorList() []Detector {
	ds := DefaultDetectors()
	defaultOf[*AnonymousIP](ds...).List = []string{"185.220.101.0/24"}
	return ds
}

// TestReplayAfterRestart restarts the detectors the way the engine does —
// afresh, reading again the sign-ins of the last 14 days (its lookback)
// — at three points of a month of sign-ins with attacks: the replay
// raises no alert the first reading had not, and reading on raises the
// alerts of an uninterrupted reading.
func TestReplayAfterRestart(t *testing.T) {
	t.Parallel()
	evs := attackStream(200, 30)
	keys := func(evs []SignIn) map[string]bool {
		out := map[string]bool{}
		for _, a := range Run(slices.Clone(evs), withTorList()) {
			out[a.Key] = true
		}
		return out
	}
	full := keys(evs)
	kinds := map[string]int{}
	for k := range full {
		kinds[k[:slices.Index([]byte(k), '/')]]++
	}
	for _, name := range []string{"impossibleTravel", "unfamiliarFeatures", "anonymousIP", "sessionReplay", "distributedPasswordCracking"} {
		if kinds[name] < 3 {
			t.Errorf("%s raised %d alerts in the stream (%v)", name, kinds[name], kinds)
		}
	}
	const lookback = 14 * 24 * time.Hour
	for _, at := range []float64{0.5, 0.7, 0.9, 0.97} {
		n := int(at * float64(len(evs)))
		last := evs[n-1].Time
		// The engine reads again from the first sign-in of the minute
		// before its lookback.
		from := 0
		for i := range n {
			if last.Sub(evs[i].Time) > lookback {
				from = i
			}
		}
		before := keys(evs[:n])
		for k := range keys(evs[from:n]) {
			if !before[k] {
				t.Errorf("restart at %.0f%%: the replay raised %s anew", at*100, k)
			}
		}
		after := keys(evs[from:])
		for k := range full {
			if !before[k] && !after[k] {
				t.Errorf("restart at %.0f%%: %s missed", at*100, k)
			}
		}
		for k := range after {
			if !full[k] {
				t.Errorf("restart at %.0f%%: %s raised anew", at*100, k)
			}
		}
	}
}
