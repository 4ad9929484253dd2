package detect

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadAddressList(t *testing.T) {
	t.Parallel()
	got, err := LoadAddressList(strings.NewReader(`# Tor exit nodes
185.220.101.1
  185.220.102.0/24   # a whole /24
2a0b:f4c2::/40
2a0b:f4c2:2::1
::ffff:198.51.100.7
10.1.2.3/8

fe80::1%eth0
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"185.220.101.1/32", "185.220.102.0/24", "2a0b:f4c2::/40", "2a0b:f4c2:2::1/128", "198.51.100.7/32", "10.0.0.0/8", "fe80::1/128"}
	var strs []string
	for _, p := range got {
		strs = append(strs, p.String())
	}
	if !slices.Equal(strs, want) {
		t.Errorf("%v, want %v", strs, want)
	}
	for _, c := range []struct{ in, want string }{
		{"1.2.3.4\nexit 1.2.3.5\n", `address list: line 2: "exit 1.2.3.5" is not an address or CIDR`},
		{"# ok\n\n1.2.3.4/33\n", `address list: line 3: "1.2.3.4/33" is not an address or CIDR`},
		{"1.2.3.4:443\n", `line 1: "1.2.3.4:443"`},
		{strings.Repeat("1", 70_000), "address list: after line 0: bufio.Scanner: token too long"},
	} {
		if _, err := LoadAddressList(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.40q: %v, want %q", c.in, err, c.want)
		}
	}
}

// TestPrefixSet holds the merged, bisected ranges to a plain scan of the
// prefixes, on random lists and addresses near their edges.
func TestPrefixSet(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.IntN(4)) // few distinct bytes: prefixes overlap
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
	}
	for range 200 {
		var ps []netip.Prefix
		for range r.IntN(20) {
			v6 := r.IntN(2) == 0
			a := randAddr(v6)
			ps = append(ps, netip.PrefixFrom(a, r.IntN(a.BitLen()+1)).Masked())
		}
		set := newPrefixSet(ps)
		for range 200 {
			a := randAddr(r.IntN(2) == 0)
			if len(ps) > 0 && r.IntN(3) == 0 { // the edges of a prefix
				p := ps[r.IntN(len(ps))]
				a = p.Addr()
				if r.IntN(2) == 0 {
					a = a.Prev()
				}
			}
			if !a.IsValid() {
				continue
			}
			want := slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
			if got := set.contains(a); got != want {
				t.Fatalf("%s in %v: %v, want %v (ranges %+v)", a, ps, got, want, set)
			}
		}
	}
	all := newPrefixSet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::ffff:1.2.3.4"} {
		if !all.contains(netip.MustParseAddr(a)) {
			t.Errorf("%s not in everything", a)
		}
	}
	if len(all.v4)+len(all.v6) != 2 || (*prefixSet)(nil).contains(netip.MustParseAddr("1.2.3.4")) || all.contains(netip.Addr{}) {
		t.Error("edge cases")
	}
}

func FuzzLoadAddressList(f *testing.F) {
	f.Add("# list\n185.220.101.1\n185.220.102.0/24\n2a0b:f4c2::/40 # v6\n::ffff:1.2.3.4/120\n")
	f.Add("0.0.0.0/0\n::/0\n")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := LoadAddressList(strings.NewReader(in))
		if err != nil {
			return
		}
		set := newPrefixSet(ps)
		for _, p := range ps {
			if !set.contains(p.Addr()) || !set.contains(lastOf(p)) {
				t.Fatalf("%v not in its set", p)
			}
		}
	})
}

// lastOf is a prefix's last address.
func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func BenchmarkAnonymousLookup(b *testing.B) {
	list := torLikeList(2000)
	set := newPrefixSet(list)
	probe := make([]netip.Addr, 1024)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range probe {
		probe[i] = netip.AddrFrom4([4]byte{185, 220, byte(r.IntN(256)), byte(r.IntN(256))})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		set.contains(probe[i%len(probe)])
		i++
	}
}

// torLikeList is n prefixes shaped like a Tor exit list with some proxy
// ranges: mostly single addresses, every tenth a /24, a few IPv6 /48s.
func torLikeList(n int) []netip.Prefix {
	r := rand.New(rand.NewPCG(5, 6))
	out := make([]netip.Prefix, 0, n)
	for i := range n {
		switch {
		case i%50 == 0:
			out = append(out, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x2a, 0x0b, byte(i >> 8), byte(i)}), 48))
		case i%10 == 0:
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{185, 220, byte(r.IntN(256)), 0}), 24))
		default:
			out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.IntN(223) + 1), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), 32))
		}
	}
	return out
}

// TestAnonymousIP: a sign-in past the password from a listed address is
// raised, once a day per user and address; a wrong password, a service
// principal or an unlisted address are not.
func TestAnonymousIP(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	d := defaultOf[*AnonymousIP]()
	var list []string
	for _, p := range torLikeList(2000) {
		list = append(list, p.String())
	}
	d.List = append(list, "185.220.101.0/24", "2a0b:f4c2::/40")
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	code := func(id, ip string, c int) SignIn { return signIn(t0, id, "alice@contoso.com", ip, c) }
	sp := code("sp", "185.220.101.9", 0)
	sp.User, sp.ServicePrincipal = "", true
	later := code("later", "185.220.101.7", 0)
	later.Time = t0.Add(25 * time.Hour)
	got := Run([]SignIn{
		code("ok", "185.220.101.7", 0), code("again", "185.220.101.7", 0), // the second within the day: not again
		code("mfa", "185.220.101.8", 50074), // a second factor asked for: the password was right
		code("v6", "2a0b:f4c2:1::1", 500121),
		code("wrong", "185.220.101.9", codeWrongPassword), code("clean", "198.51.100.1", 0), sp, later,
	}, []Detector{d})
	var ids []string
	for _, a := range got {
		if a.Detector != "anonymousIP" || a.Severity != "medium" || len(a.Evidence) != 1 || a.User != "alice@contoso.com" {
			t.Errorf("alert %+v", a)
		}
		ids = append(ids, a.Evidence[0])
	}
	slices.Sort(ids)
	if want := []string{"later", "mfa", "ok", "v6"}; !slices.Equal(ids, want) {
		t.Errorf("raised for %v, want %v", ids, want)
	}
	d = defaultOf[*AnonymousIP]()
	d.List = []string{"1.2.3.4", "not an address"}
	if err := d.Validate(); err == nil || err.Error() != `list[1]: "not an address" is not an address or CIDR` {
		t.Errorf("bad entry: %v", err)
	}
	// The entries that parse still work.
	if got := Run([]SignIn{code("a", "1.2.3.4", 0)}, []Detector{d}); len(got) != 1 {
		t.Errorf("a list with a bad entry: %+v", got)
	}
}

// TestDistributedPasswordCracking: more than 30 failed passwords within a
// day from 3 or more locations is raised; 30, two locations, or the same
// spread over more than a day are not.
func TestDistributedPasswordCracking(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	places := [][3]string{{"RU", "Moscow", "Moscow"}, {"BR", "São Paulo", "São Paulo"}, {"US", "Virginia", "Ashburn"}, {"US", "Virginia", "Reston"}}
	fails := func(n, locations int, step time.Duration) []SignIn {
		var out []SignIn
		for i := range n {
			s := signIn(t0.Add(time.Duration(i)*step), fmt.Sprint("f", i), "bob@contoso.com", fmt.Sprintf("203.0.%d.1", i%200), codeWrongPassword)
			p := places[i%locations]
			s.Country, s.State, s.City = p[0], p[1], p[2]
			out = append(out, s)
		}
		return out
	}
	newD := func() []Detector { return []Detector{defaultOf[*DistributedPasswordCracking]()} }
	got := Run(fails(31, 3, 40*time.Minute), newD())
	if len(got) != 1 || got[0].Detector != "distributedPasswordCracking" || len(got[0].Evidence) != 31 || got[0].Severity != "medium" ||
		got[0].MITRE[0] != "T1110" || !got[0].First.Equal(t0) {
		t.Fatalf("31 failures from 3 locations: %+v", got)
	}
	for _, c := range []struct {
		name string
		evs  []SignIn
	}{
		{"30 failures from 3 locations", fails(30, 3, 40*time.Minute)},
		{"31 failures from 2 locations", fails(31, 2, 40*time.Minute)},
		{"31 failures over 25 hours", fails(31, 3, 50*time.Minute)},
		{"31 failures from 3 locations without a location", func() []SignIn {
			evs := fails(31, 3, time.Minute)
			for i := range evs {
				evs[i].Country, evs[i].State, evs[i].City = "", "", ""
			}
			return evs
		}()},
	} {
		if got := Run(c.evs, newD()); len(got) != 0 {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
	// An ongoing attack is raised once a day.
	got = Run(fails(100, 4, 10*time.Minute), newD())
	if len(got) != 1 {
		t.Errorf("100 failures in 17 hours: %+v", got)
	}
	if got := Run(fails(200, 4, 10*time.Minute), newD()); len(got) != 2 {
		t.Errorf("200 failures in 33 hours: %d alerts", len(got))
	}
}
