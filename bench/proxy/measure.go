package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// multi is a repeatable flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ", ") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

type target struct {
	name    string
	url     string
	headers []string
	pids    []int // the proxy's processes (direct: the upstream's)
}

// sample is one round of one target.
type sample struct {
	rps      float64
	cpu      float64       // processor time of the target's processes per request, µs
	p50, p99 time.Duration // single connection
	bad      int64         // non-2xx answers and socket errors, both runs
}

// runMeasure runs the targets in turn, round after round — throughput
// with wrk -t2 -c64, then single-connection latency with wrk -t1 -c1
// --latency — so that a slow minute of the shared machine hits every
// target alike, and prints each run and then the summary in Markdown.
func runMeasure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	var targets, headers, pids multi
	fs.Var(&targets, "target", "NAME=URL, in the order they run (repeatable)")
	fs.Var(&headers, "header", "NAME=Header: value for that target's requests (repeatable)")
	fs.Var(&pids, "pid", "NAME=PID[,PID...]: the processes whose processor time a request of that target costs (repeatable)")
	rounds := fs.Int("rounds", 3, "rounds")
	dur := fs.Duration("d", 10*time.Second, "duration of a throughput run")
	latDur := fs.Duration("ld", 5*time.Second, "duration of a latency run")
	threads := fs.Int("t", 2, "wrk threads for throughput")
	conns := fs.Int("c", 64, "wrk connections for throughput")
	direct := fs.String("direct", "direct", "the target that is the upstream itself")
	verity := fs.String("verity", "verity", "Verity's target")
	nginx := fs.String("nginx", "nginx", "nginx's target")
	o2p := fs.String("o2p", "oauth2-proxy", "oauth2-proxy's target")
	_ = fs.Parse(args)
	if *dur > 10*time.Second || *latDur > 10*time.Second {
		return fmt.Errorf("runs are bounded to 10s")
	}
	var ts []*target
	byName := map[string]*target{}
	for _, t := range targets {
		name, u, ok := strings.Cut(t, "=")
		if !ok {
			return fmt.Errorf("-target %q: want NAME=URL", t)
		}
		ts = append(ts, &target{name: name, url: u})
		byName[name] = ts[len(ts)-1]
	}
	for _, h := range headers {
		name, v, ok := strings.Cut(h, "=")
		if !ok || byName[name] == nil {
			return fmt.Errorf("-header %q: want NAME=Header: value for a known target", h)
		}
		byName[name].headers = append(byName[name].headers, v)
	}
	for _, p := range pids {
		name, list, ok := strings.Cut(p, "=")
		if !ok || byName[name] == nil {
			return fmt.Errorf("-pid %q: want NAME=PID[,PID...] for a known target", p)
		}
		for _, f := range strings.Split(list, ",") {
			pid, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return fmt.Errorf("-pid %q: %w", p, err)
			}
			byName[name].pids = append(byName[name].pids, pid)
		}
	}
	// wrk counts redirects as successes: make sure every target answers
	// the upstream's own 200 "ok" (a session that is not accepted gets a
	// redirect to sign in), before the rounds and after them.
	if err := check(ts); err != nil {
		return err
	}
	results := map[string][]sample{}
	for r := 1; r <= *rounds; r++ {
		for _, t := range ts {
			var s sample
			cpu0 := cpuTicks(t.pids)
			out, err := wrk(t, "-t", fmt.Sprint(*threads), "-c", fmt.Sprint(*conns), "-d", durArg(*dur))
			if err != nil {
				return err
			}
			s.rps, s.bad = parseRPS(out), parseBad(out)
			if n := parseRequests(out); n > 0 && len(t.pids) > 0 {
				s.cpu = float64(cpuTicks(t.pids)-cpu0) * 1e4 / float64(n) // ticks are 10 ms
			}
			out, err = wrk(t, "-t", "1", "-c", "1", "-d", durArg(*latDur), "--latency")
			if err != nil {
				return err
			}
			s.p50, s.p99 = parsePercentile(out, "50%"), parsePercentile(out, "99%")
			s.bad += parseBad(out)
			results[t.name] = append(results[t.name], s)
			fmt.Printf("round %d  %-14s %9.0f req/s  %6.1f µs cpu/req   p50 %7s  p99 %7s   bad %d\n", r, t.name, s.rps, s.cpu, us(s.p50), us(s.p99), s.bad)
		}
	}

	if err := check(ts); err != nil {
		return err
	}
	fmt.Printf("\n| configuration | requests/s (wrk -t%d -c%d, %s), median [range] | processor time per request | single connection p50 | p99 | non-2xx / errors |\n|---|---|---|---|---|---|\n", *threads, *conns, *dur)
	for _, t := range ts {
		ss := results[t.name]
		var bad int64
		for _, s := range ss {
			bad += s.bad
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %d |\n", t.name,
			rangeOf(ss, func(s sample) float64 { return s.rps }, "%.0f"),
			rangeOf(ss, func(s sample) float64 { return s.cpu }, "%.0f µs"),
			rangeOf(ss, func(s sample) float64 { return float64(s.p50.Microseconds()) }, "%.0f µs"),
			rangeOf(ss, func(s sample) float64 { return float64(s.p99.Microseconds()) }, "%.0f µs"), bad)
	}
	fmt.Println()
	ratio := func(label, a, b string, goal string) {
		if results[a] == nil || results[b] == nil {
			return
		}
		var per []float64
		for i := range results[a] {
			per = append(per, results[a][i].rps/results[b][i].rps)
		}
		fmt.Printf("- %s: %.2f× (per round %s; goal %s)\n", label, median(per), spread(per, "%.2f"), goal)
	}
	ratio(*verity+" / "+*o2p+" requests/s", *verity, *o2p, "≥ 3×")
	ratio(*verity+" / "+*nginx+" requests/s", *verity, *nginx, "≥ 0.60×")
	if results[*verity] != nil && results[*direct] != nil {
		var per []float64
		for i := range results[*verity] {
			per = append(per, float64((results[*verity][i].p50 - results[*direct][i].p50).Microseconds()))
		}
		fmt.Printf("- %s single-connection p50 added over %s: %.0f µs (per round %s; goal ≤ 250 µs)\n", *verity, *direct, median(per), spread(per, "%.0f"))
	}
	return nil
}

// check fails unless each target answers one request with 200 "ok".
func check(ts []*target) error {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, t := range ts {
		req, err := http.NewRequest(http.MethodGet, t.url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("User-Agent", userAgent)
		for _, h := range t.headers {
			name, v, _ := strings.Cut(h, ":")
			if v = strings.TrimSpace(v); strings.EqualFold(name, "Host") {
				req.Host = v
			} else {
				req.Header.Add(name, v)
			}
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "ok" {
			return fmt.Errorf("%s answers %d %s, not the upstream's 200 ok", t.name, resp.StatusCode, truncate(b, 200))
		}
	}
	return nil
}

func durArg(d time.Duration) string { return fmt.Sprintf("%ds", int(d.Seconds())) }

// wrk runs wrk against t and returns its output.
func wrk(t *target, args ...string) (string, error) {
	for _, h := range t.headers {
		args = append(args, "-H", h)
	}
	args = append(args, "-H", "User-Agent: "+userAgent, t.url)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("wrk %s: %w\n%s", t.name, err, out)
	}
	return string(out), nil
}

// cpuTicks is the processor time (user and system, in clock ticks of
// 10 ms) the processes have used so far.
func cpuTicks(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses:
		// utime and stime are the 14th and 15th of the line.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseInt(f[11], 10, 64)
			k, _ := strconv.ParseInt(f[12], 10, 64)
			sum += u + k
		}
	}
	return sum
}

var (
	requestsLine = regexp.MustCompile(`(\d+) requests in`)
	rpsLine      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	non2xxLine   = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	socketLine   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseRPS(out string) float64 {
	m := rpsLine.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func parseRequests(out string) int64 {
	m := requestsLine.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

func parseBad(out string) int64 {
	var n int64
	if m := non2xxLine.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		n += v
	}
	if m := socketLine.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			v, _ := strconv.ParseInt(s, 10, 64)
			n += v
		}
	}
	return n
}

// parsePercentile reads a line of wrk's latency distribution ("99%  1.23ms").
func parsePercentile(out, pct string) time.Duration {
	sc := bufio.NewScanner(strings.NewReader(out))
	in := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "Latency" && f[1] == "Distribution" {
			in = true
			continue
		}
		if in && len(f) == 2 && f[0] == pct {
			d, err := time.ParseDuration(strings.Replace(f[1], "us", "µs", 1))
			if err == nil {
				return d
			}
		}
	}
	return 0
}

func us(d time.Duration) string { return fmt.Sprintf("%dµs", d.Microseconds()) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(v []float64, f string) string {
	return fmt.Sprintf(f+"–"+f, slices.Min(v), slices.Max(v))
}

func rangeOf(ss []sample, get func(sample) float64, f string) string {
	var v []float64
	for _, s := range ss {
		v = append(v, get(s))
	}
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf(f+" [%s]", median(v), spread(v, strings.TrimSuffix(strings.TrimSuffix(f, " µs"), " µs")))
}
