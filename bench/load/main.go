// Command load drives a running Verity node with concurrent admin API
// requests and reports throughput and latency percentiles. It measures the
// whole system — HTTP, authentication, authorisation, store, audit — on
// 127.0.0.1; bench/run.sh starts the nodes it measures.
//
//	go run ./bench/load -url http://127.0.0.1:18443 -token vrt_... -scenario read -c 16 -d 10s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "base URL of the node")
	token := flag.String("token", os.Getenv("VERITY_TOKEN"), "bearer token (or $VERITY_TOKEN)")
	scenario := flag.String("scenario", "read", "read (GET a user), write (POST a user), transitive (GET transitiveMemberOf), mixed (90% read, 10% write)")
	conc := flag.Int("c", 16, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "duration")
	label := flag.String("label", "", "label for the result line")
	flag.Parse()
	if *url == "" || *token == "" {
		fmt.Fprintln(os.Stderr, "load: -url and -token are required")
		os.Exit(2)
	}
	res, err := runLoad(*url, *token, *scenario, *conc, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	fmt.Printf("%-28s %-10s c=%-3d %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  errors %d/%d\n",
		*label, *scenario, *conc, res.rps, res.p50, res.p99, res.errors, res.total)
}

type result struct {
	rps, p50, p99 float64
	total, errors int64
}

func runLoad(base, token, scenario string, conc int, dur time.Duration) (result, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc * 2}, Timeout: 30 * time.Second}
	call := func(method, path string, body []byte) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	// A target user inside a nested group, for the read scenarios.
	run := time.Now().UnixNano()
	status, body, err := call("POST", "/api/v1/users", fmt.Appendf(nil, `{"userPrincipalName":"load-target-%d@bench.example","displayName":"Load target"}`, run))
	if err != nil || status != http.StatusCreated {
		return result{}, fmt.Errorf("create target user: %d %s %v", status, body, err)
	}
	var target struct{ ID string }
	_ = json.Unmarshal(body, &target)
	parent := ""
	for level := range 3 {
		members := ""
		if parent == "" {
			members = target.ID
		} else {
			members = parent
		}
		status, body, err = call("POST", "/api/v1/groups", fmt.Appendf(nil,
			`{"displayName":"load-%d-level-%d","members":[%q]}`, run, level, members))
		if err != nil || status != http.StatusCreated {
			return result{}, fmt.Errorf("create group: %d %s %v", status, body, err)
		}
		var g struct{ ID string }
		_ = json.Unmarshal(body, &g)
		parent = g.ID
	}

	var (
		seq       atomic.Int64
		total     atomic.Int64
		failures  atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for i := 0; ctx.Err() == nil; i++ {
				op := scenario
				if scenario == "mixed" {
					op = "read"
					if i%10 == 9 {
						op = "write"
					}
				}
				t0 := time.Now()
				var status int
				var err error
				switch op {
				case "read":
					status, _, err = call("GET", "/api/v1/users/"+target.ID, nil)
				case "transitive":
					status, _, err = call("GET", "/api/v1/users/"+target.ID+"/transitiveMemberOf", nil)
				case "write":
					n := seq.Add(1)
					status, _, err = call("POST", "/api/v1/users", fmt.Appendf(nil,
						`{"userPrincipalName":"load-%d-%d-%d@bench.example","displayName":"Load user"}`, run, w, n))
				default:
					err = errors.New("unknown scenario " + op)
				}
				local = append(local, time.Since(t0))
				total.Add(1)
				if err != nil || status >= 400 {
					failures.Add(1)
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	return result{rps: float64(total.Load()) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99), total: total.Load(), errors: failures.Load()}, nil
}
