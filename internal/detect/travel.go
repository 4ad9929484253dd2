package detect

import (
	"fmt"
	"math"
	"time"
)

// earthRadiusKm is the Earth's mean radius (IUGG).
const earthRadiusKm = 6371.0088

// maxDistanceKm is the farthest two places on Earth are apart (half a
// great circle): no journey is longer.
const maxDistanceKm = math.Pi * earthRadiusKm

// distanceKm is the great-circle distance between two points (haversine).
func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Sqrt(min(h, 1)))
}

// place is where and when a user signed in, as the travel rule keeps it
// (coordinates in float32: a metre's precision, half the memory).
type place struct {
	at       int64 // unix nanoseconds
	id       recordID
	lat, lon float32
	country  [2]byte
}

func placeOf(s *SignIn) place {
	p := place{at: s.Time.UnixNano(), lat: float32(s.Lat), lon: float32(s.Lon), id: idOf(s.ID)}
	copy(p.country[:], s.Country)
	return p
}

func (p place) where() string {
	if p.country == [2]byte{} {
		return "an unknown country"
	}
	return string(p.country[:])
}

// ImpossibleTravel: two successful interactive sign-ins of one user from
// places farther apart than anyone can travel in the time between them:
// faster than SpeedKmh (1000 km/h, a little faster than an airliner), and
// at least MinDistanceKm apart (500 km: city-level geolocation of mobile
// and corporate egress addresses is often hundreds of kilometres off).
// Each sign-in is compared with the user's previous one. Sign-ins from
// ExemptCIDRs (VPN egress, proxies the organisation runs) are left out;
// sign-ins without coordinates are not compared. After the impossible
// travel of Microsoft Defender for Cloud Apps (Entra riskEventType
// impossibleTravel; ATT&CK T1078). One alert per user in each Window (24
// hours, from midnight UTC): a user switching a VPN on and off is raised
// once a day. Evidence: both sign-ins.
type ImpossibleTravel struct {
	SpeedKmh      float64       `json:"speedKmh"`
	MinDistanceKm float64       `json:"minDistanceKm"`
	ExemptCIDRs   []string      `json:"exemptCIDRs"`
	Window        time.Duration `json:"window"`

	exempt addrList
	users  *userTable // shared with unfamiliarFeatures by DefaultDetectors
	sweep  sweeper
}

type travelState struct {
	last   place
	raised int64 // the window (day) of the user's last alert, plus one; 0: none
}

func (d *ImpossibleTravel) Name() string { return "impossibleTravel" }

// Validate checks the thresholds and names a bad exempt entry.
func (d *ImpossibleTravel) Validate() error {
	if d.SpeedKmh <= 0 {
		return fmt.Errorf("speedKmh: must be more than 0")
	}
	_, err := parseAddressList("exemptCIDRs", d.ExemptCIDRs)
	return err
}

// eligible reports whether s is a sign-in the rule compares: a successful
// interactive sign-in of a user, with coordinates, not from an exempt
// address. (Non-interactive sign-ins are refresh tokens redeemed, often by
// an application's servers, not where the user is.)
func (d *ImpossibleTravel) eligible(s *SignIn) bool {
	return s.Success && s.Interactive && s.User != "" && !s.ServicePrincipal && s.HasGeo && !d.exempt.get(d.ExemptCIDRs).contains(s.IP)
}

// impossible reports how far and how fast the user would have travelled
// from prev to cur, and whether that is impossible.
func (d *ImpossibleTravel) impossible(prev, cur place) (km, kmh float64, ok bool) {
	km = distanceKm(float64(prev.lat), float64(prev.lon), float64(cur.lat), float64(cur.lon))
	if km < d.MinDistanceKm || km == 0 {
		return km, 0, false
	}
	hours := time.Duration(cur.at - prev.at).Hours()
	if hours <= 0 {
		return km, math.Inf(1), true
	}
	kmh = km / hours
	return km, kmh, kmh > d.SpeedKmh
}

// reach is how long a sign-in can matter to the next: beyond it, no
// distance on Earth is too far.
func (d *ImpossibleTravel) reach() time.Duration {
	return time.Duration(maxDistanceKm / max(d.SpeedKmh, 1) * float64(time.Hour))
}

func (d *ImpossibleTravel) Observe(s *SignIn, raise func(Alert)) {
	if d.users == nil {
		d.users = &userTable{}
	}
	span := max(d.reach(), d.Window)
	d.users.travelSpan = span
	if !d.users.profiled && d.sweep.due(s.Time, span) {
		now := s.Time.UnixNano()
		d.users.sweep(func(st *userState) bool {
			if now-st.travel.last.at > int64(span) { // and so the window it was raised in is over
				st.travel = travelState{}
			}
			return st.travel.last.at != 0 || st.profile.count != 0
		})
	}
	if !d.eligible(s) {
		return
	}
	cur := placeOf(s)
	st := &d.users.get(s.User).travel
	prev, seen := st.last, st.last.at != 0
	st.last = cur
	km, kmh, ok := d.impossible(prev, cur)
	w := windowOf(s.Time, d.Window)
	if !ok || !seen || st.raised == w.n+1 {
		return
	}
	st.raised = w.n + 1
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), s.User, w.start), MITRE: []string{"T1078"},
		Severity: "medium", User: s.User, UserID: s.UserID, IP: s.IP, First: time.Unix(0, prev.at).UTC(), Last: s.Time,
		Evidence: []string{prev.id.String(), s.ID}, Summary: d.summary(s.User, prev, cur, km, kmh)})
}

func (d *ImpossibleTravel) summary(user string, prev, cur place, km, kmh float64) string {
	gap := time.Duration(cur.at - prev.at).Round(time.Minute)
	speed := "at once"
	if !math.IsInf(kmh, 1) {
		speed = fmt.Sprintf("%.0f km/h", kmh)
	}
	return fmt.Sprintf("%s signed in from %s and, %v later, from %s: %.0f km apart (%s, more than %.0f km/h)",
		user, prev.where(), gap, cur.where(), km, speed, d.SpeedKmh)
}
