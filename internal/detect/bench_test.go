package detect

import (
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchCities are where the stream's users live: 64 places spread over
// the world, each with its country, network (ASN) and coordinates.
var benchCities = func() []city {
	out := make([]city, 64)
	for i := range out {
		out[i] = city{country: string([]byte{'A' + byte(i/26), 'A' + byte(i%26)}), lat: float64(i%16)*10 - 75, lon: float64(i/16)*80 - 160}
	}
	return out
}()

var benchAgents = []string{uaWindowsChrome, uaIPhoneSafari, uaMacFirefox, uaLinuxEdge}

// stream makes n sign-ins of users (of nUsers) from addresses (of
// 65,536), one every 10 ms of event time: 90% successes, 8% wrong
// passwords, 2% denied second factors — a busy tenant's day, no attack.
// Each user signs in from their home (one of 64 cities, with country,
// state, city, coordinates and network), with their browser (one of 4),
// in their session; one sign-in in 1,000 comes from an address of
// anonymous, a list of 2,000 prefixes shaped like a Tor exit list.
func stream(n, nUsers int) (evs []SignIn, anonymous []string) {
	list := torLikeList(2000)
	for _, p := range list {
		anonymous = append(anonymous, p.String())
	}
	out := make([]SignIn, n)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	users := make([]string, nUsers)
	sessions := make([]string, nUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user%07d@contoso.com", i)
		sessions[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	asns, states, cities := make([]string, 64), make([]string, len(benchCities)), make([]string, len(benchCities))
	for i := range asns {
		asns[i] = strconv.Itoa(64512 + i)
	}
	for i, c := range benchCities {
		states[i], cities[i] = "State "+c.country, "City "+c.country
	}
	for i := range out {
		u := (i * 7919) % nUsers
		ip := netip.AddrFrom4([4]byte{10, byte(u >> 8), byte(u), 1})
		if i%1000 == 999 {
			ip = list[(i/1000)%len(list)].Addr()
		}
		code := 0
		switch i % 50 {
		case 1, 2, 3, 4:
			code = codeWrongPassword
		case 5:
			code = codeMFADenied
		}
		k := u % len(benchCities)
		c := benchCities[k]
		out[i] = SignIn{Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), ID: "e", User: users[u], UserID: users[u], IP: ip,
			Code: code, Success: code == 0, Interactive: true, Country: c.country, State: states[k], City: cities[k],
			Lat: c.lat, Lon: c.lon, HasGeo: true, ASN: asns[u%len(asns)], UserAgent: benchAgents[u%len(benchAgents)],
			SessionID: sessions[u]}
	}
	return out, anonymous
}

// benchDetectors are the default detectors with the anonymous list.
func benchDetectors(anonymous []string) []Detector {
	ds := DefaultDetectors()
	defaultOf[*AnonymousIP](ds...).List = anonymous
	return ds
}

// BenchmarkDetectors measures sign-ins through every default detector on
// one goroutine (run with -cpu 1): ns per event and events/s.
func BenchmarkDetectors(b *testing.B) {
	const users = 1_000_000
	evs, anonymous := stream(2_000_000, users)
	b.Run("throughput", func(b *testing.B) {
		ds := benchDetectors(anonymous)
		raise := func(Alert) {}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &evs[i%len(evs)]
			for _, d := range ds {
				d.Observe(s, raise)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkDetectorMemory reports the heap the detectors hold per user
// after a stream of 2,000,000 sign-ins of 1,000,000 users (run with
// -benchtime 1x). Each sign-in's strings are its own (user name, a
// 36-character id, session), as when the engine reads them from the log,
// so what a detector keeps of them counts.
func BenchmarkDetectorMemory(b *testing.B) {
	const users = 1_000_000
	evs, anonymous := stream(2_000_000, users)
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ds := benchDetectors(anonymous)
			id := []byte("00000000-0000-4000-8000-000000000000")
			for i := range evs {
				s := evs[i]
				s.User, s.UserID, s.SessionID = strings.Clone(s.User), strings.Clone(s.UserID), strings.Clone(s.SessionID)
				strconv.AppendInt(id[:24], 1e11+int64(i), 10)
				s.ID = string(id)
				for _, d := range ds {
					d.Observe(&s, func(Alert) {})
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/users, "heap-bytes/user")
			runtime.KeepAlive(ds)
		}
	})
}
