package detect

import (
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// SessionReplay: one session of a user (its sessionId; for records
// without one, the token's uniqueTokenIdentifier) used from two places far
// apart within Window (60 minutes) — a stolen session cookie or token
// replayed from the attacker's machine. After Panther's
// GraphSessionMultipleIPs (one session from 2 addresses within 60
// minutes); Entra riskEventType anomalousToken; ATT&CK T1550, T1078.
//
// Far apart: different networks — the addresses' /16 (IPv4) or /32
// (IPv6) — and, when both sign-ins have coordinates, more than
// MinDistanceKm (500) apart. Severity high when the coordinates show the
// distance; medium on the networks alone, since a phone moving from Wi-Fi
// to its mobile network changes networks too. An IPv4 and an IPv6 address
// (a dual-stack client) are compared by their coordinates only.
//
// Successful sign-ins only. Non-interactive ones only when NonInteractive:
// a web application redeems its refresh tokens from its own servers, not
// from the user's browser. Sign-ins from ExemptCIDRs (VPN egress) and to
// ExemptApps (applications that act for the user from many networks, as
// Panther's rule exempts Microsoft's own) are left out. Each sign-in of a
// session is compared with the session's previous one; one alert per
// session in each Window (from the hour). Evidence: both sign-ins.
type SessionReplay struct {
	Window         time.Duration `json:"window"`
	MinDistanceKm  float64       `json:"minDistanceKm"`
	ExemptCIDRs    []string      `json:"exemptCIDRs"`
	ExemptApps     []string      `json:"exemptApps"`
	NonInteractive bool          `json:"nonInteractive"`

	exempt     addrList
	appsOnce   sync.Once
	exemptApps map[string]bool
	// bySession holds each session's latest use, by a hash of the session
	// id (values in the map: a sweep reads them in order).
	seed      maphash.Seed
	bySession map[uint64]sessionUse
	sweep     sweeper
}

// sessionUse is a session's latest sign-in, as the rule keeps it.
type sessionUse struct {
	at       int64  // unix nanoseconds
	user     uint64 // a hash of the user's name: a session is one user's
	ip       netip.Addr
	id       recordID
	lat, lon float32
	raised   int64 // the window (hour) of the session's last alert, plus one; 0: none
	geo      bool
}

func useOf(s *SignIn) sessionUse {
	return sessionUse{at: s.Time.UnixNano(), ip: s.IP, lat: float32(s.Lat), lon: float32(s.Lon), geo: s.HasGeo, id: idOf(s.ID)}
}

func (d *SessionReplay) Name() string { return "sessionReplay" }

// Validate names a bad exempt entry.
func (d *SessionReplay) Validate() error {
	_, err := parseAddressList("exemptCIDRs", d.ExemptCIDRs)
	return err
}

// sessionOf is the session a sign-in belongs to, "" for none.
func sessionOf(s *SignIn) string {
	if s.SessionID != "" {
		return s.SessionID
	}
	return s.TokenID
}

// eligible reports whether s is a sign-in the rule compares.
func (d *SessionReplay) eligible(s *SignIn) bool {
	if !s.Success || s.User == "" || !s.IP.IsValid() || sessionOf(s) == "" || (!s.Interactive && !d.NonInteractive) {
		return false
	}
	d.appsOnce.Do(func() {
		d.exemptApps = map[string]bool{}
		for _, a := range d.ExemptApps {
			d.exemptApps[a] = true
		}
	})
	return !d.exemptApps[s.AppID] && !d.exempt.get(d.ExemptCIDRs).contains(s.IP)
}

// replayed returns the severity of a session used at prev and then at
// cur ("" when that is no replay) and the distance when known.
func (d *SessionReplay) replayed(prev, cur *sessionUse) (km float64, severity string) {
	if cur.at-prev.at > int64(d.Window) {
		return 0, ""
	}
	sameFamily := prev.ip.Is4() == cur.ip.Is4()
	otherNetwork := !sameFamily || subnetOf(prev.ip) != subnetOf(cur.ip)
	switch {
	case !otherNetwork:
		return 0, ""
	case prev.geo && cur.geo:
		km = distanceKm(float64(prev.lat), float64(prev.lon), float64(cur.lat), float64(cur.lon))
		if km > d.MinDistanceKm {
			return km, "high"
		}
		return km, ""
	case sameFamily:
		return 0, "medium"
	}
	return 0, ""
}

func (d *SessionReplay) Observe(s *SignIn, raise func(Alert)) {
	if d.bySession != nil && d.sweep.due(s.Time, d.Window) {
		now := s.Time.UnixNano()
		for k, u := range d.bySession {
			if now-u.at > int64(d.Window) {
				delete(d.bySession, k)
			}
		}
	}
	if !d.eligible(s) {
		return
	}
	if d.bySession == nil {
		d.bySession, d.seed = map[uint64]sessionUse{}, maphash.MakeSeed()
	}
	session := sessionOf(s)
	key := maphash.String(d.seed, session)
	cur := useOf(s)
	cur.user = maphash.String(d.seed, s.User)
	last, ok := d.bySession[key]
	if !ok || last.user != cur.user {
		d.bySession[key] = cur
		return
	}
	cur.raised = last.raised
	km, severity := d.replayed(&last, &cur)
	w := windowOf(s.Time, d.Window)
	if severity != "" && last.raised != w.n+1 {
		cur.raised = w.n + 1
	} else {
		severity = ""
	}
	d.bySession[key] = cur
	if severity == "" {
		return
	}
	where := "networks"
	if km > 0 {
		where = fmt.Sprintf("places %.0f km", km)
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%s/%d", d.Name(), s.User, session, w.start),
		MITRE: []string{"T1550", "T1078"}, Severity: severity, User: s.User, UserID: s.UserID, IP: s.IP,
		First: time.Unix(0, last.at).UTC(), Last: s.Time, Evidence: []string{last.id.String(), s.ID},
		Summary: fmt.Sprintf("a session of %s was used from %s and, %v later, from %s: %s apart",
			s.User, last.ip, time.Duration(cur.at-last.at).Round(time.Second), s.IP, where)})
}
