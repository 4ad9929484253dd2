package audit

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/verityhq/verity/internal/store"
)

// FileSink appends events to a file as JSON lines, fsynced per batch. The
// file is its own cursor: on start, and after a failed write, the last
// complete line says where to go on, and a line cut short by a crash is
// removed — nothing lost, nothing written twice.
type FileSink struct {
	path string
	mu   sync.Mutex
	f    *os.File
	next int64 // -1: read it from the file
}

// NewFileSink opens (creating, mode 0600) the file at path.
func NewFileSink(path string) (*FileSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit file sink: %w", err)
	}
	return &FileSink{path: path, f: f, next: -1}, nil
}

func (s *FileSink) Name() string { return "file:" + s.path }

// Next reads the file's last complete line (once, and after a failure).
func (s *FileSink) Next(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next >= 0 {
		return uint64(s.next), nil
	}
	size, err := s.f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	// Read back far enough for one line (events are bounded in size).
	const window = 4 << 20
	from := max(0, size-window)
	buf := make([]byte, size-from)
	if _, err := s.f.ReadAt(buf, from); err != nil && err != io.EOF {
		return 0, err
	}
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 && size > window {
		return 0, fmt.Errorf("audit file sink %s: no complete line in its last %d bytes", s.path, window)
	}
	if keep := from + int64(end) + 1; keep < size {
		// A line cut short by a crash: it is written again.
		if err := s.f.Truncate(keep); err != nil {
			return 0, err
		}
	}
	if end < 0 {
		s.next = 0
		return 0, nil
	}
	start := bytes.LastIndexByte(buf[:end], '\n') + 1
	var last struct {
		LeafIndex *int64 `json:"leafIndex"`
	}
	if err := json.Unmarshal(buf[start:end], &last); err != nil || last.LeafIndex == nil {
		return 0, fmt.Errorf("audit file sink %s: its last line is not an audit event", s.path)
	}
	s.next = *last.LeafIndex + 1
	return uint64(s.next), nil
}

func (s *FileSink) Send(ctx context.Context, evs []store.AuditEvent) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for i := range evs {
		b.Write(eventJSON(&evs[i]))
		b.WriteByte('\n')
	}
	if _, err := s.f.Seek(0, io.SeekEnd); err != nil {
		s.next = -1
		return 0, err
	}
	if _, err := s.f.Write(b.Bytes()); err != nil {
		s.next = -1
		return 0, fmt.Errorf("audit file sink %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		s.next = -1
		return 0, fmt.Errorf("audit file sink %s: %w", s.path, err)
	}
	s.next = evs[len(evs)-1].Index + 1
	return len(evs), nil
}

func (s *FileSink) Close() error { return s.f.Close() }

// SyslogSink sends events to a syslog server as RFC 5424 messages over
// TCP, or TLS (RFC 5425), with octet-counting framing. A batch counts as
// delivered when it was written whole; after a broken connection the
// batch is sent again on a new one, so a receiver may see an event twice
// (never none): each message carries its leaf index to tell.
type SyslogSink struct {
	name, addr, hostname string
	tls                  *tls.Config // nil: plain TCP
	conn                 net.Conn
}

// NewSyslogSink returns a sink for addr (host:port); tlsConf nil for TCP.
func NewSyslogSink(name, addr string, tlsConf *tls.Config) *SyslogSink {
	host, _ := os.Hostname()
	return &SyslogSink{name: name, addr: addr, tls: tlsConf, hostname: host}
}

func (s *SyslogSink) Name() string { return s.name }

// syslogSDID names Verity's structured data (the enterprise number is the
// one RFC 5612 sets aside for documentation).
const syslogSDID = "verity@32473"

func (s *SyslogSink) message(e *store.AuditEvent) ([]byte, error) {
	m := &rfc5424.SyslogMessage{}
	severity := uint8(6) // informational
	if e.Result == "failure" || e.Result == "denied" {
		severity = 5 // notice
	}
	m.SetPriority(13*8 + severity) // facility 13: log audit
	m.SetVersion(1)
	m.SetTimestamp(e.Time.UTC().Format(time.RFC3339Nano))
	if s.hostname != "" {
		m.SetHostname(s.hostname)
	}
	m.SetAppname("verity")
	msgID := e.Action
	if len(msgID) > 32 {
		msgID = msgID[:32]
	}
	if msgID != "" {
		m.SetMsgID(msgID)
	}
	m.SetParameter(syslogSDID, "leafIndex", strconv.FormatInt(e.Index, 10))
	m.SetParameter(syslogSDID, "seq", strconv.FormatInt(e.Seq, 10))
	m.SetMessage(string(eventJSON(e)))
	str, err := m.String()
	if err != nil {
		return nil, fmt.Errorf("syslog message of leaf %d: %w", e.Index, err)
	}
	return []byte(strconv.Itoa(len(str)) + " " + str), nil
}

func (s *SyslogSink) Send(ctx context.Context, evs []store.AuditEvent) (int, error) {
	var b bytes.Buffer
	for i := range evs {
		msg, err := s.message(&evs[i])
		if err != nil {
			return 0, err
		}
		b.Write(msg)
	}
	if s.conn == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		var c net.Conn
		var err error
		if s.tls != nil {
			c, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).DialContext(ctx, "tcp", s.addr)
		} else {
			c, err = d.DialContext(ctx, "tcp", s.addr)
		}
		if err != nil {
			return 0, fmt.Errorf("syslog %s: %w", s.addr, err)
		}
		s.conn = c
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.conn.Write(b.Bytes()); err != nil {
		_ = s.conn.Close()
		s.conn = nil
		return 0, fmt.Errorf("syslog %s: %w", s.addr, err)
	}
	return len(evs), nil
}

func (s *SyslogSink) Close() error {
	if s.conn != nil {
		return s.conn.Close()
	}
	return nil
}

// OTLPSink sends events to an OpenTelemetry collector as log records
// over OTLP/HTTP (protobuf). A batch is delivered when the collector
// accepts it (2xx); otherwise it is sent again (a collector that accepted
// a batch but whose answer was lost sees it twice). Each record carries the
// leaf index (verity.audit.leaf_index).
type OTLPSink struct {
	name, url string
	headers   map[string]string
	client    *http.Client
	hostname  string
}

// NewOTLPSink returns a sink posting to url (…/v1/logs) with headers.
func NewOTLPSink(name, url string, headers map[string]string, tlsConf *tls.Config) *OTLPSink {
	host, _ := os.Hostname()
	tr := &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyFromEnvironment}
	return &OTLPSink{name: name, url: url, headers: headers, hostname: host, client: &http.Client{Timeout: 15 * time.Second, Transport: tr}}
}

func (s *OTLPSink) Name() string { return s.name }

func str(k, v string) *common.KeyValue {
	return &common.KeyValue{Key: k, Value: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: v}}}
}

func (s *OTLPSink) Send(ctx context.Context, evs []store.AuditEvent) (int, error) {
	recs := make([]*logs.LogRecord, len(evs))
	for i := range evs {
		e := &evs[i]
		sev, text := logs.SeverityNumber_SEVERITY_NUMBER_INFO, "INFO"
		if e.Result == "failure" || e.Result == "denied" {
			sev, text = logs.SeverityNumber_SEVERITY_NUMBER_WARN, "WARN"
		}
		recs[i] = &logs.LogRecord{
			TimeUnixNano: uint64(e.Time.UnixNano()), ObservedTimeUnixNano: uint64(time.Now().UnixNano()),
			SeverityNumber: sev, SeverityText: text, EventName: e.Action,
			Body: &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: string(eventJSON(e))}},
			Attributes: []*common.KeyValue{
				{Key: "verity.audit.leaf_index", Value: &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: e.Index}}},
				str("verity.audit.action", e.Action), str("verity.audit.actor", e.Actor),
				str("verity.audit.target", e.Target), str("verity.audit.result", e.Result),
			},
		}
	}
	// LogsData is, on the wire, the collector's ExportLogsServiceRequest
	// (the OTLP specification keeps them compatible), without the gRPC
	// service code that comes with the latter's package.
	req := &logs.LogsData{ResourceLogs: []*logs.ResourceLogs{{
		Resource:  &resource.Resource{Attributes: []*common.KeyValue{str("service.name", "verity"), str("host.name", s.hostname)}},
		ScopeLogs: []*logs.ScopeLogs{{Scope: &common.InstrumentationScope{Name: "verity.audit"}, LogRecords: recs}},
	}}}
	body, err := proto.Marshal(req)
	if err != nil {
		return 0, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	hr.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range s.headers {
		hr.Header.Set(k, v)
	}
	resp, err := s.client.Do(hr)
	if err != nil {
		return 0, fmt.Errorf("otlp %s: %w", s.url, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return 0, fmt.Errorf("otlp %s: %s: %s", s.url, resp.Status, bytes.TrimSpace(rb[:min(len(rb), 200)]))
	}
	return len(evs), nil
}

func (s *OTLPSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

var (
	_ LocalSink = (*FileSink)(nil)
	_ Sink      = (*SyslogSink)(nil)
	_ Sink      = (*OTLPSink)(nil)
)
