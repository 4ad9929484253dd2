package detect

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The properties of a sign-in the unfamiliar-properties rule compares
// (Microsoft names IP, ASN, location, device, browser and tenant IP
// subnet): where from — the country, the network (autonomous system) and
// the address's /16 (an IPv6 address's /32) — and with what — the device
// (its directory id, else its operating system) and the client (the
// browser or program).
const (
	propCountry = iota
	propASN
	propSubnet
	propDevice
	propClient
	numProps
)

const (
	whereProps = 1<<propCountry | 1<<propASN | 1<<propSubnet
	whatProps  = 1<<propDevice | 1<<propClient
)

// props are a sign-in's properties, each reduced to a number (a country
// or an ASN exactly, the others hashed); 0 is unknown.
type props [numProps]uint32

// propsOf reads a sign-in's properties; c, when not nil, remembers the
// families of the User-Agent strings seen lately.
func propsOf(s *SignIn, c *uaCache) props {
	var p props
	if len(s.Country) == 2 {
		p[propCountry] = uint32(s.Country[0])<<8 | uint32(s.Country[1])
	}
	if s.ASN != "" {
		if n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s.ASN, "AS"), "as"), 10, 32); err == nil && n != 0 {
			p[propASN] = uint32(n)
		} else {
			p[propASN] = hashFold(s.ASN)
		}
	}
	p[propSubnet] = subnetOf(s.IP)
	os, browser := c.family(s.UserAgent)
	if os == "" {
		os = s.OS
	}
	if browser == "" {
		browser = s.Browser
		// Entra's browser names carry the version ("Edge 90.0.818").
		if i := strings.IndexAny(browser, "0123456789"); i > 0 {
			browser = strings.TrimSpace(browser[:i])
		}
	}
	switch {
	case s.DeviceID != "":
		p[propDevice] = hashFold(s.DeviceID)
	case os != "":
		p[propDevice] = hashFold(osFamily(os))
	}
	if browser != "" {
		p[propClient] = hashFold(browser)
	}
	return p
}

// subnetOf is an address's /16 (IPv4) or /32 (IPv6) as a number, 0 for
// none.
func subnetOf(a netip.Addr) uint32 {
	switch {
	case !a.IsValid():
		return 0
	case a.Is4():
		b := a.As4()
		return 1<<24 | uint32(b[0])<<8 | uint32(b[1])
	}
	b := a.As16()
	return max(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]), 1)
}

// hashFold is FNV-1a of parts (each followed by a 0 byte) with ASCII
// letters folded to lower case; never 0.
func hashFold(parts ...string) uint32 {
	h := uint32(2166136261)
	for _, s := range parts {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			h = (h ^ uint32(c)) * 16777619
		}
		h *= 16777619 // ^ 0
	}
	return max(h, 1)
}

// userAgentFamily names the operating system and browser of a User-Agent
// string — families, not versions, which change every few weeks. A client
// that is not a browser is named by its product token ("python-requests",
// "Microsoft Office", "BAV2ROPC").
func userAgentFamily(ua string) (os, browser string) {
	if ua == "" {
		return "", ""
	}
	switch {
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"), strings.Contains(ua, "iPod"):
		os = "ios"
	case strings.Contains(ua, "Android"):
		os = "android"
	case strings.Contains(ua, "Windows"):
		os = "windows"
	case strings.Contains(ua, "Mac OS X"), strings.Contains(ua, "Macintosh"):
		os = "macos"
	case strings.Contains(ua, "CrOS"):
		os = "chromeos"
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		os = "linux"
	}
	switch {
	case strings.Contains(ua, "Edg"): // Edg/, Edge/, EdgA/, EdgiOS/
		browser = "edge"
	case strings.Contains(ua, "OPR/"), strings.Contains(ua, "Opera"):
		browser = "opera"
	case strings.Contains(ua, "SamsungBrowser/"):
		browser = "samsung"
	case strings.Contains(ua, "Firefox/"), strings.Contains(ua, "FxiOS/"):
		browser = "firefox"
	case strings.Contains(ua, "Chrome/"), strings.Contains(ua, "CriOS/"), strings.Contains(ua, "Chromium/"):
		browser = "chrome"
	case strings.Contains(ua, "Safari/"):
		browser = "safari"
	case strings.Contains(ua, "Trident/"), strings.Contains(ua, "MSIE "):
		browser = "ie"
	default:
		browser, _, _ = strings.Cut(ua, "/")
		browser = strings.TrimSpace(browser)
	}
	return os, browser
}

// uaCache remembers the families of the User-Agent strings seen lately:
// most sign-ins come from a few browser versions, and reading a
// User-Agent's family costs a dozen substring searches. Not safe for
// concurrent use.
type uaCache struct {
	seed    maphash.Seed
	entries [256]struct{ ua, os, browser string }
}

// family is userAgentFamily(ua), remembered.
func (c *uaCache) family(ua string) (os, browser string) {
	if c == nil || ua == "" {
		return userAgentFamily(ua)
	}
	if c.seed == (maphash.Seed{}) {
		c.seed = maphash.MakeSeed()
	}
	e := &c.entries[maphash.String(c.seed, ua)%uint64(len(c.entries))]
	if e.ua != ua {
		e.os, e.browser = userAgentFamily(ua)
		e.ua = ua
	}
	return e.os, e.browser
}

// osFamily reduces an operating system name ("Windows 10", "MacOs",
// "Ios") to the family userAgentFamily names.
func osFamily(os string) string {
	for _, f := range [...]struct{ prefix, family string }{
		{"windows", "windows"}, {"ios", "ios"}, {"ipados", "ios"}, {"mac", "macos"}, {"android", "android"},
		{"chrome", "chromeos"}, {"linux", "linux"},
	} {
		if len(os) >= len(f.prefix) && strings.EqualFold(os[:len(f.prefix)], f.prefix) {
			return f.family
		}
	}
	return os
}

// profileSlots is how many values of each property a profile remembers:
// the most recently seen.
const profileSlots = 4

// profile is what a user's sign-ins have looked like: for each property
// the values seen lately, most recent first, with the day each was last
// seen. 128 bytes.
type profile struct {
	start uint16 // the day the profile began (days since 1970, UTC)
	last  uint16 // the day of its latest sign-in
	count uint16 // sign-ins learned (saturating)
	val   [numProps][profileSlots]uint32
	day   [numProps][profileSlots]uint16 // 0: an empty slot
}

func dayOf(t time.Time) uint16 {
	return uint16(min(max(t.Unix()/86400, 1), 1<<16-1))
}

func daysIn(d time.Duration) int { return int((d + 24*time.Hour - 1) / (24 * time.Hour)) }

func newProfile(day uint16) *profile { return &profile{start: day, last: day} }

// learn adds a sign-in's properties.
func (p *profile) learn(pr *props, day uint16) {
	for k, v := range pr {
		if v == 0 {
			continue
		}
		vals, days := &p.val[k], &p.day[k]
		i := 0
		for i < profileSlots-1 && !(vals[i] == v && days[i] != 0) {
			i++
		}
		// Move it (or, when it is new, the least recent) to the front.
		copy(vals[1:i+1], vals[:i])
		copy(days[1:i+1], days[:i])
		vals[0], days[0] = v, day
	}
	p.count = min(p.count+1, 1<<16-1)
	p.last = max(p.last, day)
}

// compare returns which of a sign-in's properties the profile knows
// values of (seen within memory days of day) and which of those are new.
func (p *profile) compare(pr *props, day uint16, memory int) (known, fresh uint8) {
	for k, v := range pr {
		if v == 0 {
			continue
		}
		seen := false
		for i := range profileSlots {
			if d := p.day[k][i]; d != 0 && int(day)-int(d) < memory {
				known |= 1 << k
				seen = seen || p.val[k][i] == v
			}
		}
		if known&(1<<k) != 0 && !seen {
			fresh |= 1 << k
		}
	}
	return known, fresh
}

// UnfamiliarFeatures: a successful interactive sign-in whose properties
// are unfamiliar for the user — new where from (country, network or
// /16) and new with what (device or client), and more than Fraction (0.5)
// of the properties known for the user new — after Microsoft Entra ID
// Protection's "Unfamiliar sign-in properties" (riskEventType
// unfamiliarFeatures; ATT&CK T1078). Severity medium when every known
// property is new, low when most are.
//
// A user's sign-ins are learned before any is judged, as Entra's "learning
// mode" does: at least LearningPeriod (5 days, Entra's minimum) and
// MinSignIns (10) sign-ins. A value not seen for Memory (14 days) is
// unfamiliar again, and a user not seen for Memory starts learning again
// (Entra: "a user can go back into learning mode after a long period of
// inactivity"). The detector judges only once it has watched the stream
// for Memory, so that reading the last Memory of the log again after a
// restart (the engine's lookback must be at least Memory) judges every
// sign-in as the first reading did, and raises nothing new.
// Non-interactive sign-ins (refresh tokens an application's servers
// redeem) are neither learned nor judged. Per user: a profile of 128
// bytes.
type UnfamiliarFeatures struct {
	LearningPeriod time.Duration `json:"learningPeriod"`
	MinSignIns     int           `json:"minSignIns"`
	Memory         time.Duration `json:"memory"`
	Fraction       float64       `json:"fraction"`

	users  *userTable // shared with impossibleTravel by DefaultDetectors
	agents uaCache
	began  time.Time
	sweep  sweeper
}

func (d *UnfamiliarFeatures) Name() string { return "unfamiliarFeatures" }

// Validate checks the thresholds.
func (d *UnfamiliarFeatures) Validate() error {
	if d.Memory < 24*time.Hour {
		return fmt.Errorf("memory: must be a day or more")
	}
	if d.Fraction >= 1 {
		return fmt.Errorf("fraction: must be less than 1")
	}
	return nil
}

// eligible reports whether s is a sign-in the rule learns and judges.
func (d *UnfamiliarFeatures) eligible(s *SignIn) bool {
	return s.Success && s.Interactive && s.User != "" && !s.ServicePrincipal
}

// judge returns which of pr's known properties are new, when the profile
// has learned enough and they are unfamiliar; severity is "" otherwise.
func (d *UnfamiliarFeatures) judge(p *profile, pr *props, day uint16) (known, fresh uint8, severity string) {
	if int(day)-int(p.start) < daysIn(d.LearningPeriod) || int(p.count) < d.MinSignIns {
		return 0, 0, ""
	}
	known, fresh = p.compare(pr, day, daysIn(d.Memory))
	n, k := bits.OnesCount8(fresh), bits.OnesCount8(known)
	if fresh&whereProps == 0 || fresh&whatProps == 0 || float64(n) <= d.Fraction*float64(k) {
		return known, fresh, ""
	}
	if fresh == known {
		return known, fresh, "medium"
	}
	return known, fresh, "low"
}

// current reports whether p is the user's profile on day: there is one,
// and the user was seen within Memory (else they start learning again).
func (d *UnfamiliarFeatures) current(p *profile, day uint16) bool {
	return p != nil && p.count != 0 && int(day)-int(p.last) < daysIn(d.Memory)
}

func (d *UnfamiliarFeatures) Observe(s *SignIn, raise func(Alert)) {
	if d.began.IsZero() {
		d.began = s.Time
	}
	if d.users == nil {
		d.users = &userTable{}
	}
	d.users.profiled = true
	memory := daysIn(d.Memory)
	if d.sweep.due(s.Time, d.Memory) {
		today, now, span := int(dayOf(s.Time)), s.Time.UnixNano(), int64(d.users.travelSpan)
		d.users.sweep(func(st *userState) bool {
			if today-int(st.profile.last) >= memory {
				st.profile = profile{}
			}
			// Travel's sign-ins are all learned here: it has almost always
			// forgotten the user already.
			return st.profile.count != 0 || now-st.travel.last.at <= span
		})
	}
	if !d.eligible(s) {
		return
	}
	day := dayOf(s.Time)
	pr := propsOf(s, &d.agents)
	p := &d.users.get(s.User).profile
	switch {
	case !d.current(p, day):
		*p = profile{start: day, last: day} // new, or back from a long absence: learning
	case s.Time.Sub(d.began) >= d.Memory:
		if _, fresh, sev := d.judge(p, &pr, day); sev != "" {
			raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), s.User, s.Time.Unix()), MITRE: []string{"T1078"},
				Severity: sev, User: s.User, UserID: s.UserID, IP: s.IP, First: s.Time, Last: s.Time, Evidence: []string{s.ID},
				Summary: fmt.Sprintf("%s signed in with properties new for them: %s", s.User, describeProps(s, fresh))})
		}
	}
	p.learn(&pr, day)
}

// describeProps names a sign-in's properties in mask.
func describeProps(s *SignIn, mask uint8) string {
	var out []string
	os, browser := userAgentFamily(s.UserAgent)
	for k := range numProps {
		if mask&(1<<k) == 0 {
			continue
		}
		switch k {
		case propCountry:
			out = append(out, "country "+s.Country)
		case propASN:
			out = append(out, "network AS"+strings.TrimPrefix(s.ASN, "AS"))
		case propSubnet:
			out = append(out, "address "+s.IP.String())
		case propDevice:
			if s.DeviceID != "" {
				out = append(out, "device "+s.DeviceID)
			} else {
				out = append(out, "operating system "+osFamily(cmp.Or(os, s.OS)))
			}
		case propClient:
			out = append(out, "client "+cmp.Or(browser, s.Browser))
		}
	}
	return strings.Join(out, ", ")
}
