package signin_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/signin"
)

// BenchmarkPasswordSignIn is one password sign-in from start to end as the
// API makes it: lockout check, user lookup, argon2id verification
// (m=32 MiB, t=2, p=2), conditional access, the sign-in log record. Run
// with -cpu 1 for sign-ins per second on one core.
func BenchmarkPasswordSignIn(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	d := signin.Direct{UPN: aliceUPN, Password: alicePW, ClientApp: access.ClientAppMobileAndDesktop, IP: netip.MustParseAddr("127.0.0.1")}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		res, err := e.svc.SignInDirect(ctx, d)
		if err != nil || res.Code != signin.CodeSuccess {
			b.Fatalf("%+v %v", res, err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signins/s")
}
