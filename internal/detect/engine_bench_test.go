package detect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// benchLog fills a SQLite audit log with n sign-in records of users (as
// the sign-in pages write them: Graph signIn objects with location and
// coordinates, session, client) and a directory change every 50th event.
func benchLog(b *testing.B, n, users int) store.Store {
	b.Helper()
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		if i%50 == 49 {
			appendQueued(b, st, store.AuditEvent{Time: at, Actor: "admin", Action: "users.create", Target: "/api/v1/users",
				Result: "success", Details: []byte(fmt.Sprintf(`{"method":"POST","id":"u%d","userPrincipalName":"new%d@contoso.com"}`, i, i))})
			continue
		}
		u := (i * 7919) % users
		code := 0
		if i%25 == 1 {
			code = signin.CodeInvalidCredentials
		}
		city := u % 64
		ev := signin.Event{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), CreatedDateTime: at, UserID: fmt.Sprintf("id-%d", u),
			UserPrincipalName: fmt.Sprintf("user%d@contoso.com", u), AppID: "app", IPAddress: fmt.Sprintf("10.%d.%d.1", u>>8&255, u&255),
			Location: signin.Location{City: fmt.Sprint("City ", city), CountryOrRegion: "FR",
				GeoCoordinates: &signin.GeoCoordinates{Latitude: float64(city%16)*10 - 75, Longitude: float64(city/16)*80 - 160}},
			ClientAppUsed: "Browser", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0", CorrelationID: "c",
			IsInteractive: true, Status: signin.Status{ErrorCode: code}, SessionID: fmt.Sprintf("s%d", u),
			AuthenticationDetails: []signin.AuthenticationStep{}, AppliedConditionalAccess: []signin.AppliedPolicy{}}
		body, _ := json.Marshal(ev)
		result := "success"
		if code != 0 {
			result = "failure"
		}
		appendQueued(b, st, store.AuditEvent{Time: at, Actor: ev.UserID, Action: signin.AuditAction,
			Target: "/applications/app", Result: result, Details: body})
	}
	for {
		h, err := st.AuditHead(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if h.Size >= uint64(n) {
			return st
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// appendQueued queues e, waiting while the backlog is full.
func appendQueued(b *testing.B, st store.Store, e store.AuditEvent) {
	for {
		err := st.AppendAuditAsync(context.Background(), e)
		if !errors.Is(err, store.ErrAuditBacklog) {
			if err != nil {
				b.Fatal(err)
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkEngine measures the whole engine on one core: events read from
// the audit log in SQLite, sign-ins decoded from their JSON, every
// sign-in and audit detector, the cursor saved per batch.
func BenchmarkEngine(b *testing.B) {
	const n = 200_000
	st := benchLog(b, n, 50_000)
	b.ResetTimer()
	for b.Loop() {
		e := detect.NewEngine(st, detect.DefaultDetectors, nil)
		e.Lookback = time.Nanosecond // read from the start every round
		if _, err := st.PutRecord(context.Background(), store.Record{Kind: "detectCursor", ID: "signIns", Body: []byte(`{"next":0,"replayFrom":0}`)}); err != nil {
			b.Fatal(err)
		}
		read := 0
		for read < n {
			k, err := e.Step(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				b.Fatalf("stopped at %d", read)
			}
			read += k
		}
		if err := e.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAssess measures the sign-in risk of an attempt in flight: the
// user's last 100 sign-ins read from the audit log and decoded, every
// rule applied — what a sign-in pays for it.
func BenchmarkAssess(b *testing.B) {
	st := benchLog(b, 20_000, 100) // 100 users, ~200 sign-ins each
	a := detect.NewAssessor(st, detect.RealtimeOptionsOf(detect.DefaultDetectors()))
	attempt, _ := json.Marshal(signin.Event{ID: "x", CreatedDateTime: time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC), UserID: "id-7",
		UserPrincipalName: "user7@contoso.com", IPAddress: "203.0.113.9", Location: signin.Location{CountryOrRegion: "AU",
			GeoCoordinates: &signin.GeoCoordinates{Latitude: -33.87, Longitude: 151.2}}, UserAgent: "Mozilla/5.0 (Macintosh) Firefox/130.0",
		IsInteractive: true, ClientAppUsed: "Browser"})
	b.ReportAllocs()
	for b.Loop() {
		r, err := a.Assess(context.Background(), attempt)
		if err != nil || r.Level == "none" {
			b.Fatalf("%+v %v", r, err)
		}
	}
}
