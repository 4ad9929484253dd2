package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// credentials is what `verity login` keeps for later commands, in a file
// only the user can read.
type credentials struct {
	Server    string `json:"server"`
	CAFile    string `json:"caFile,omitempty"`
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt,omitempty"`
	User      string `json:"user,omitempty"`
}

func credentialsPath() (string, error) {
	if p := os.Getenv("VERITY_CREDENTIALS_FILE"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user configuration directory: %w", err)
	}
	return filepath.Join(dir, "verity", "credentials.json"), nil
}

func loadCredentials() (credentials, error) {
	var c credentials
	p, err := credentialsPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read %s: %w", p, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s is corrupt (%v); run verity login again", p, err)
	}
	return c, nil
}

func saveCredentials(c credentials) error {
	p, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return os.Rename(tmp, p)
}

// client talks to the admin API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags are shared by every command that calls the API.
type clientFlags struct {
	server string
	caFile string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "Verity URL (default: from verity login, or $VERITY_SERVER)")
	cmd.Flags().StringVar(&f.caFile, "ca", "", "PEM file of the CA to trust (default: from verity login, or $VERITY_CA_FILE)")
}

// newClient combines flags, environment and saved credentials, in that
// order of precedence. $VERITY_TOKEN overrides the saved token.
func (f *clientFlags) newClient(needToken bool) (*client, credentials, error) {
	saved, err := loadCredentials()
	if err != nil {
		return nil, saved, err
	}
	server := firstOf(f.server, os.Getenv("VERITY_SERVER"), saved.Server)
	caFile := firstOf(f.caFile, os.Getenv("VERITY_CA_FILE"))
	token := os.Getenv("VERITY_TOKEN")
	if server == saved.Server || f.server == "" {
		caFile = firstOf(caFile, saved.CAFile)
		token = firstOf(token, saved.Token)
	}
	if server == "" {
		return nil, saved, errors.New("no server: pass --server URL or run verity login first")
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, saved, fmt.Errorf("--server %q is not an http(s) URL", server)
	}
	if needToken && token == "" {
		return nil, saved, errors.New("not signed in: run verity login (or set VERITY_TOKEN)")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, saved, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, saved, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tlsConf.RootCAs = pool
	}
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf, Proxy: http.ProxyFromEnvironment}}
	return &client{base: strings.TrimSuffix(server, "/"), token: token, http: hc}, credentials{Server: server, CAFile: caFile}, nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiError is a problem returned by the server.
type apiError struct {
	Status  int
	Code    string
	Message string
	Target  string
	Details []problemItem
}

type problemItem struct {
	Code, Message, Target string
}

func (e *apiError) Error() string {
	msg := e.Message
	if e.Target != "" {
		msg = e.Target + ": " + msg
	}
	msg = fmt.Sprintf("%s (%d %s)", msg, e.Status, e.Code)
	for _, d := range e.Details {
		msg += "\n  " + d.Target + ": " + d.Message
	}
	return msg
}

// doText sends a text/plain body and puts the raw response in out.
func (c *client) doText(ctx context.Context, method, path string, body []byte, out *[]byte) error {
	return c.send(ctx, method, path, bytes.NewReader(body), "text/plain; charset=utf-8", out)
}

// do sends a JSON request and decodes a JSON response into out (if not nil).
func (c *client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	contentType := ""
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd, contentType = bytes.NewReader(b), "application/json"
	}
	return c.send(ctx, method, path, rd, contentType, out)
}

// send makes the request and decodes a JSON response into out (raw bytes
// when out is a *[]byte).
func (c *client) send(ctx context.Context, method, path string, rd io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 400 {
		var p struct {
			Error struct {
				Code, Message, Target string
				Details               []problemItem
			} `json:"error"`
		}
		if json.Unmarshal(data, &p) != nil || p.Error.Code == "" {
			return &apiError{Status: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(data))}
		}
		return &apiError{Status: resp.StatusCode, Code: p.Error.Code, Message: p.Error.Message, Target: p.Error.Target, Details: p.Error.Details}
	}
	if out != nil && len(data) > 0 {
		if raw, ok := out.(*[]byte); ok {
			*raw = data
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
	}
	return nil
}
