package proxy

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: PerSecond requests a second on average,
// Burst at once. Zero PerSecond turns the limit off.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// maxLimiterKeys bounds the buckets one limiter keeps; past it, buckets
// idle longer than limiterIdle are dropped, and if that is not enough the
// limiter starts over (a flood of new keys must not exhaust memory).
const (
	maxLimiterKeys = 100_000
	limiterIdle    = 10 * time.Minute
)

// keyedLimiter holds one token bucket per key (a client address, a user).
type keyedLimiter struct {
	limit RateLimit
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

func newKeyedLimiter(l RateLimit, now func() time.Time) *keyedLimiter {
	if l.PerSecond <= 0 {
		return nil
	}
	if l.Burst < 1 {
		l.Burst = int(math.Max(1, math.Ceil(l.PerSecond)))
	}
	return &keyedLimiter{limit: l, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token for key; when there is none it says how long until
// one is due.
func (k *keyedLimiter) allow(key string) (bool, time.Duration) {
	if k == nil {
		return true, 0
	}
	now := k.now()
	k.mu.Lock()
	b, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= maxLimiterKeys {
			k.sweep(now)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Limit(k.limit.PerSecond), k.limit.Burst)}
		k.buckets[key] = b
	}
	b.used = now
	r := b.lim.ReserveN(now, 1)
	k.mu.Unlock()
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops idle buckets, or all of them; k.mu is held.
func (k *keyedLimiter) sweep(now time.Time) {
	for key, b := range k.buckets {
		if now.Sub(b.used) > limiterIdle {
			delete(k.buckets, key)
		}
	}
	if len(k.buckets) >= maxLimiterKeys {
		k.buckets = map[string]*bucket{}
	}
}

// tooMany answers 429 with Retry-After.
func (p *Proxy) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, what string) {
	p.metrics.requests.WithLabelValues("rate_limited").Inc()
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	p.refuse(w, r, http.StatusTooManyRequests, "TooManyRequests", "Too many requests "+what+". Try again in a moment.", "")
}
