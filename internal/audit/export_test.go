package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/octetcounting"
	"github.com/leodido/go-syslog/v4/rfc5424"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/localca"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// received collects the leaf indices a receiver got, in order.
type received struct {
	mu  sync.Mutex
	idx []int64
}

func (r *received) add(i int64) {
	r.mu.Lock()
	r.idx = append(r.idx, i)
	r.mu.Unlock()
}

// exactly waits until the receiver holds leaves 0..n-1, each once, in
// order, and fails on anything else.
func (r *received) exactly(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		got := append([]int64(nil), r.idx...)
		r.mu.Unlock()
		for i, v := range got {
			if v != int64(i) {
				t.Fatalf("received leaf %d at position %d (duplicate or out of order)", v, i)
			}
		}
		if len(got) == n {
			return
		}
		if len(got) > n || time.Now().After(deadline) {
			t.Fatalf("received %d events, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func runExporter(t *testing.T, st store.Store, sinks ...audit.Sink) (stop func()) {
	t.Helper()
	x := audit.NewExporter(st, sinks, nil)
	x.Poll, x.Backoff, x.Batch = 10*time.Millisecond, 50*time.Millisecond, 100
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		x.Run(ctx)
		close(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestFileSinkResumes: the file sink writes every event once, in order;
// after a stop, a line cut short by a crash and more events, a new
// exporter goes on from the file's last complete line.
func TestFileSinkResumes(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	appendEvents(t, st, 0, 450)
	fs, err := audit.NewFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	stop := runExporter(t, st, fs)
	// lines reads the complete lines (a line being written, or cut short
	// and not yet removed, is not one).
	lines := func() []int64 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b = b[:bytes.LastIndexByte(b, '\n')+1]
		var out []int64
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct {
				LeafIndex *int64 `json:"leafIndex"`
				Action    string `json:"action"`
			}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.LeafIndex == nil || ev.Action == "" {
				t.Fatalf("line %d: %v %q", len(out), err, sc.Text())
			}
			out = append(out, *ev.LeafIndex)
		}
		return out
	}
	waitLines := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			got := lines()
			if len(got) >= n {
				for i, v := range got {
					if v != int64(i) {
						t.Fatalf("line %d holds leaf %d", i, v)
					}
				}
				if len(got) != n {
					t.Fatalf("%d lines, want %d", len(got), n)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d lines, want %d", len(got), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLines(450)
	stop()
	// A crash in the middle of a write, then more events.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString(`{"leafIndex":450,"seq":451,"time":"20`)
	f.Close()
	appendEvents(t, st, 450, 150)
	fs2, err := audit.NewFileSink(path)
	if err != nil {
		t.Fatal(err)
	}
	runExporter(t, st, fs2)
	waitLines(600)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v", fi.Mode().Perm())
	}
}

// TestSyslogSinkOutage: events go to a syslog server over TLS as RFC 5424
// messages with octet-counting framing; while the server is down nothing
// moves, and when it comes up every event arrives once, in order.
func TestSyslogSinkOutage(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	appendEvents(t, st, 0, 250)
	files, err := localca.Ensure(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(files.CACert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	// A port that refuses connections until the server starts on it.
	ln0, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln0.Addr().String()
	ln0.Close()

	sink := audit.NewSyslogSink("siem", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	runExporter(t, st, sink)
	time.Sleep(200 * time.Millisecond) // it fails a few times

	var got received
	var bad atomic.Value
	ln, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go octetcounting.NewParser(syslog.WithListener(func(r *syslog.Result) {
				if r.Error != nil {
					bad.Store(r.Error.Error())
					return
				}
				m := r.Message.(*rfc5424.SyslogMessage)
				sd := *m.StructuredData
				i, err := strconv.ParseInt(sd["verity@32473"]["leafIndex"], 10, 64)
				if err != nil || m.Appname == nil || *m.Appname != "verity" || m.Message == nil || !strings.Contains(*m.Message, `"leafIndex":`+strconv.FormatInt(i, 10)) {
					bad.Store("malformed message")
					return
				}
				got.add(i)
			})).Parse(c)
		}
	}()
	got.exactly(t, 250)
	appendEvents(t, st, 250, 50)
	got.exactly(t, 300)
	if v := bad.Load(); v != nil {
		t.Fatalf("the receiver saw: %v", v)
	}
}

// TestOTLPSinkOutage: events go to an OTLP/HTTP collector as log records;
// while it answers 503 the batch is sent again, and every event arrives
// once, in order. Two nodes exporting the same sink share its lease: only
// one sends.
func TestOTLPSinkOutage(t *testing.T) {
	t.Parallel()
	dsn := storetest.SQLitePath(t)
	st := storetest.OpenDSN(t, dsn)
	st2 := storetest.OpenDSN(t, dsn) // a second node
	appendEvents(t, st, 0, 320)
	var got received
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Authorization") != "Bearer collector-token" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if calls.Add(1) <= 3 {
			http.Error(w, "collector starting", http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req logs.LogsData
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					for _, kv := range lr.Attributes {
						if kv.Key == "verity.audit.leaf_index" {
							got.add(kv.Value.GetIntValue())
						}
					}
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(srv.Close)
	headers := map[string]string{"Authorization": "Bearer collector-token"}
	runExporter(t, st, audit.NewOTLPSink("otel", srv.URL+"/v1/logs", headers, nil))
	runExporter(t, st2, audit.NewOTLPSink("otel", srv.URL+"/v1/logs", headers, nil))
	got.exactly(t, 320)
	appendEvents(t, st2, 320, 80)
	got.exactly(t, 400)
}
