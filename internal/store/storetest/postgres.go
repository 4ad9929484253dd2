package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresBinDir is where Debian's postgresql-15 package installs the
// server binaries the harness runs.
const PostgresBinDir = "/usr/lib/postgresql/15/bin"

// EnvPostgres names the environment variable holding a base DSN of a
// running PostgreSQL server for tests (scripts/pgtest.sh prints it). When
// it is empty, the harness starts its own cluster.
const EnvPostgres = "VERITY_TEST_POSTGRES"

// shared is the cluster the test binary starts when EnvPostgres is unset:
// one per binary, started on first use, stopped by Main. It is the one
// piece of package state, and only tests link this package.
var shared struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

// Main runs the tests of a package and then stops the PostgreSQL cluster
// they started, if any. Call it from TestMain:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if shared.cluster != nil {
		if err := shared.cluster.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "storetest: stop postgres: %v\n", err)
		}
		shared.cluster.remove()
	}
	os.Exit(code)
}

// PostgresDSN returns a DSN to a new, empty database on a PostgreSQL 15
// server: the one EnvPostgres names, or else a cluster this test binary
// starts once (which needs Main in TestMain to be stopped). The database
// is dropped when tb ends.
//
// With -short (make test-short: unit tests only) and no EnvPostgres, it
// skips the test.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" && testing.Short() {
		tb.Skipf("-short: skipping a PostgreSQL test (set %s to run it)", EnvPostgres)
	}
	if base == "" {
		shared.once.Do(func() { shared.cluster, shared.err = startCluster() })
		if shared.err != nil {
			tb.Fatalf("storetest: %v", shared.err)
		}
		base = shared.cluster.BaseDSN()
	}
	return freshDatabase(tb, base)
}

// freshDatabase creates a uniquely named database on the server base
// points at and returns base pointing at it.
func freshDatabase(tb testing.TB, base string) string {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("storetest: parse %s: %v", EnvPostgres, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "verity_test_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("storetest: connect to test postgres %s: %v", u.Redacted(), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("storetest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Logf("storetest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("storetest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// Cluster is a throwaway PostgreSQL server in a temporary directory,
// listening on 127.0.0.1 on a free port.
type Cluster struct {
	dir    string // owned by the server's user; data/ and the socket live here
	port   int
	asUser string // "postgres" when running as root, else ""
	mu     sync.Mutex
}

// StartCluster starts a private cluster for tests that stop and restart
// the server; it is removed when tb ends. Most tests want PostgresDSN.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: skipping a test that runs its own PostgreSQL server")
	}
	c, err := startCluster()
	if err != nil {
		tb.Fatalf("storetest: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.stop(); err != nil {
			tb.Logf("storetest: stop postgres: %v", err)
		}
		c.remove()
	})
	return c
}

// BaseDSN is a DSN to the cluster's "postgres" database as superuser.
func (c *Cluster) BaseDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// DSN returns a DSN to a new, empty database on the cluster, dropped when
// tb ends.
func (c *Cluster) DSN(tb testing.TB) string {
	tb.Helper()
	return freshDatabase(tb, c.BaseDSN())
}

// Stop shuts the server down (fast mode: clients are disconnected).
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	if err := c.stop(); err != nil {
		tb.Fatalf("storetest: stop postgres: %v", err)
	}
}

// Start starts the server again on the same port.
func (c *Cluster) Start(tb testing.TB) {
	tb.Helper()
	if err := c.start(); err != nil {
		tb.Fatalf("storetest: start postgres: %v", err)
	}
}

func startCluster() (*Cluster, error) {
	initdb := filepath.Join(PostgresBinDir, "initdb")
	if _, err := os.Stat(initdb); err != nil {
		return nil, fmt.Errorf("PostgreSQL 15 is not installed (%s missing): install Debian's postgresql-15 package "+
			"(apt-get install postgresql-15), or set %s to a server's DSN (scripts/pgtest.sh start prints one)", initdb, EnvPostgres)
	}
	dir, err := os.MkdirTemp("", "verity-pg-")
	if err != nil {
		return nil, fmt.Errorf("make cluster directory: %w", err)
	}
	c := &Cluster{dir: dir}
	if os.Geteuid() == 0 {
		// The server refuses to run as root.
		c.asUser = "postgres"
		u, err := user.Lookup(c.asUser)
		if err != nil {
			c.remove()
			return nil, fmt.Errorf("running as root needs a %q user to run the server: %w", c.asUser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			c.remove()
			return nil, fmt.Errorf("chown cluster directory: %w", err)
		}
	}
	if c.port, err = freePort(); err != nil {
		c.remove()
		return nil, err
	}
	if out, err := c.run(initdb, "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		c.remove()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := c.start(); err != nil {
		c.remove()
		return nil, err
	}
	c.watchdog()
	return c, nil
}

// watchdog starts a small process that stops the server and removes its
// directory once this test binary is gone, so a binary killed by a test
// timeout or a signal leaves no server behind. After a normal stop it
// finds nothing left to do.
func (c *Cluster) watchdog() {
	stop := fmt.Sprintf("%s -D %s -m immediate stop", filepath.Join(PostgresBinDir, "pg_ctl"), c.data())
	if c.asUser != "" {
		stop = "runuser -u " + c.asUser + " -- " + stop
	}
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done; if [ -d %s ]; then %s; rm -rf %s; fi",
		os.Getpid(), c.data(), stop, c.dir)
	cmd := exec.Command("sh", "-c", script)
	// No stdout or stderr: go test waits for every holder of the binary's
	// output to close it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err == nil {
		go func() { _ = cmd.Wait() }()
	}
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300", c.port, c.dir)
	out, err := c.run(filepath.Join(PostgresBinDir, "pg_ctl"), "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"),
		"-o", opts, "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

func (c *Cluster) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	out, err := c.run(filepath.Join(PostgresBinDir, "pg_ctl"), "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil && !strings.Contains(string(out), "Is server running?") {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

func (c *Cluster) remove() { _ = os.RemoveAll(c.dir) }

// run runs a server binary, as the postgres user when we are root.
func (c *Cluster) run(bin string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

// freePort asks the kernel for a port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
