package apply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/strictjson"
)

// Limits on what ParseFiles reads, so that a wrong path (a home directory,
// a log file) fails fast instead of exhausting memory.
const (
	// MaxFileSize is the largest manifest file read.
	MaxFileSize = 16 << 20
	// MaxFiles is the most files one ParseFiles call reads.
	MaxFiles = 1000
	// MaxDocuments is the most YAML documents one file may hold.
	MaxDocuments = 1000
	// MaxEntries is the most entries, over all sections and files, of one
	// manifest.
	MaxEntries = 200000
	// maxErrors is how many problems one parse or plan reports before it
	// stops looking.
	maxErrors = 20
)

// rawManifest is the top level of one document; entries stay raw so that
// each kind decodes its own (Graph-compatible, strict) way.
type rawManifest struct {
	Users                    []json.RawMessage `json:"users"`
	Groups                   []json.RawMessage `json:"groups"`
	Applications             []json.RawMessage `json:"applications"`
	ServicePrincipals        []json.RawMessage `json:"servicePrincipals"`
	NamedLocations           []json.RawMessage `json:"namedLocations"`
	CAPolicies               []json.RawMessage `json:"conditionalAccessPolicies"`
	RoleDefinitions          []json.RawMessage `json:"roleDefinitions"`
	DenyAssignments          []json.RawMessage `json:"denyAssignments"`
	DirectoryRoleAssignments []json.RawMessage `json:"directoryRoleAssignments"`
	RoleAssignments          []json.RawMessage `json:"roleAssignments"`
	IdentityProviders        []json.RawMessage `json:"identityProviders"`
	AppRoutes                []json.RawMessage `json:"appRoutes"`
}

// ParseFiles reads manifest files and merges them into one manifest. Each
// path is a file or a directory, of which every *.yaml, *.yml and *.json
// file is read (sorted by name, not recursively, skipping hidden files). A
// YAML file may hold several documents separated by "---" lines. The same
// object (same id or natural key) in two places is an error. Errors name
// the file and the JSON path: "tenant/users.yaml: users[3].mail: unknown
// field". Values are checked for shape only; Diff validates them and
// resolves references. An identity provider's client secret is never
// read from a file: its clientSecretFromEnv names an environment variable,
// read here, on the machine that runs the apply.
func ParseFiles(paths []string) (*Manifest, error) {
	files, err := manifestFiles(paths)
	if err != nil {
		return nil, err
	}
	b := newBuilder()
	for _, f := range files {
		data, err := readFile(f)
		if err != nil {
			return nil, err
		}
		if b.addFile(f, data); b.errs.full() {
			break
		}
	}
	return b.finish()
}

// Parse reads one manifest file held in memory. name is how errors call
// it; a name ending in ".json" selects strict JSON, anything else YAML
// (which may hold several documents).
func Parse(name string, data []byte) (*Manifest, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Message: fmt.Sprintf("larger than %d MiB", MaxFileSize>>20)}
	}
	b := newBuilder()
	b.addFile(name, data)
	return b.finish()
}

// manifestFiles expands directories into their manifest files.
func manifestFiles(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("parse manifest: no file or directory given")
	}
	var files []string
	seen := map[string]bool{}
	add := func(f string) {
		if c := filepath.Clean(f); !seen[c] {
			seen[c] = true
			files = append(files, f)
		}
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("parse manifest: %w", err)
		}
		if !fi.IsDir() {
			add(p)
			continue
		}
		entries, err := os.ReadDir(p) // sorted by name
		if err != nil {
			return nil, fmt.Errorf("parse manifest: %w", err)
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !isManifestName(name) {
				continue
			}
			full := filepath.Join(p, name)
			if fi, err := os.Stat(full); err != nil || !fi.Mode().IsRegular() {
				continue // a directory named x.yaml, a dangling link
			}
			add(full)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("parse manifest: %s holds no .yaml, .yml or .json file", p)
		}
	}
	if len(files) > MaxFiles {
		return nil, fmt.Errorf("parse manifest: %d files, more than the %d allowed", len(files), MaxFiles)
	}
	return files, nil
}

func isManifestName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("parse manifest: read %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Message: fmt.Sprintf("larger than %d MiB", MaxFileSize>>20)}
	}
	return data, nil
}

// errList collects up to maxErrors problems.
type errList struct {
	errs []error
	more bool
}

func (l *errList) add(err error) {
	if len(l.errs) < maxErrors {
		l.errs = append(l.errs, err)
	} else {
		l.more = true
	}
}

func (l *errList) full() bool { return len(l.errs) >= maxErrors }

func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := l.errs
	if l.more {
		errs = append(errs[:len(errs):len(errs)], fmt.Errorf("more than %d problems; stopped looking", maxErrors))
	}
	return errors.Join(errs...)
}

// builder merges documents into one manifest.
type builder struct {
	m    *Manifest
	errs errList
	// lookupEnv reads the environment variables that identity providers'
	// clientSecretFromEnv name.
	lookupEnv func(string) (string, bool)
}

func newBuilder() *builder {
	return &builder{m: &Manifest{origins: map[string][]origin{}}, lookupEnv: os.LookupEnv}
}

func (b *builder) addFile(name string, data []byte) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if strings.EqualFold(filepath.Ext(name), ".json") {
		b.addJSON(name, 0, data)
		return
	}
	docs := splitYAML(data)
	if len(docs) > MaxDocuments {
		b.errs.add(&Error{File: name, Message: fmt.Sprintf("%d YAML documents, more than the %d allowed", len(docs), MaxDocuments)})
		return
	}
	for i, d := range docs {
		doc := 0
		if len(docs) > 1 {
			doc = i + 1
		}
		js, err := yaml.YAMLToJSONStrict(d)
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
			b.errs.add(&Error{File: name, Document: doc, Message: msg})
			continue
		}
		if string(js) == "null" {
			continue // only comments
		}
		b.addJSON(name, doc, js)
		if b.errs.full() {
			return
		}
	}
}

// splitYAML cuts a YAML stream at its "---" lines, as kubectl does. Each
// document is padded with the newlines before it, so that the YAML
// parser's line numbers are the file's. Documents without content (only
// blank lines and comments) are dropped.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	lines := 0 // lines before cur's first line
	content := false
	flush := func() {
		if content {
			docs = append(docs, append(bytes.Repeat([]byte("\n"), lines), cur...))
		}
	}
	for n, line := range bytes.SplitAfter(data, []byte("\n")) {
		text := bytes.TrimRight(line, "\r\n")
		if isMarker(text, "---") {
			flush()
			cur, lines, content = nil, n, false
			line = append([]byte("   "), line[3:]...) // keep what follows the marker, and its column
		} else if isMarker(text, "...") {
			line = []byte("\n")
		}
		cur = append(cur, line...)
		if t := bytes.TrimSpace(bytes.TrimRight(line, "\r\n")); len(t) > 0 && t[0] != '#' {
			content = true
		}
	}
	flush()
	return docs
}

// isMarker reports whether line starts with a document marker followed by
// the end of the line or white space.
func isMarker(line []byte, marker string) bool {
	return bytes.HasPrefix(line, []byte(marker)) && (len(line) == 3 || line[3] == ' ' || line[3] == '\t')
}

// addJSON decodes one document and appends its entries.
func (b *builder) addJSON(file string, doc int, data []byte) {
	fail := func(section string, i int, err error) {
		path := ""
		if section != "" {
			path = strictjson.Index(section, i)
		}
		var fe *strictjson.FieldError
		if errors.As(err, &fe) {
			b.errs.add(&Error{File: file, Document: doc, Path: joinPath(path, fe.Path), Message: fe.Message})
			return
		}
		b.errs.add(&Error{File: file, Document: doc, Path: path, Message: err.Error()})
	}
	var raw rawManifest
	if err := strictjson.Unmarshal(data, &raw); err != nil {
		fail("", 0, err)
		return
	}
	m := b.m
	total := m.Len() + len(raw.Users) + len(raw.Groups) + len(raw.Applications) + len(raw.ServicePrincipals) +
		len(raw.NamedLocations) + len(raw.CAPolicies) + len(raw.RoleDefinitions) + len(raw.DenyAssignments) + len(raw.DirectoryRoleAssignments) + len(raw.RoleAssignments) +
		len(raw.IdentityProviders) + len(raw.AppRoutes)
	if total > MaxEntries {
		b.errs.add(&Error{File: file, Document: doc, Message: fmt.Sprintf("the manifest has more than %d entries", MaxEntries)})
		return
	}
	// each decodes the entries of one section with decode, which appends.
	each := func(section string, entries []json.RawMessage, decode func(json.RawMessage) error) {
		for i, e := range entries {
			if b.errs.full() {
				return
			}
			if bytes.Equal(bytes.TrimSpace(e), []byte("null")) {
				fail(section, i, strictjson.Errorf("", "must be an object, not null"))
				continue
			}
			if err := decode(e); err != nil {
				fail(section, i, err)
				continue
			}
			m.origins[section] = append(m.origins[section], origin{file: file, doc: doc, index: i})
		}
	}
	each(secUsers, raw.Users, func(e json.RawMessage) error {
		v, err := directory.Users.Decode(e)
		if err == nil {
			m.Users = append(m.Users, *v)
		}
		return err
	})
	each(secGroups, raw.Groups, func(e json.RawMessage) error {
		g, err := decodeGroup(e)
		if err == nil {
			m.Groups = append(m.Groups, g)
		}
		return err
	})
	each(secApplications, raw.Applications, func(e json.RawMessage) error {
		v, err := directory.Applications.Decode(e)
		if err == nil {
			m.Applications = append(m.Applications, *v)
		}
		return err
	})
	each(secServicePrincipals, raw.ServicePrincipals, func(e json.RawMessage) error {
		v, err := directory.ServicePrincipals.Decode(e)
		if err == nil {
			m.ServicePrincipals = append(m.ServicePrincipals, *v)
		}
		return err
	})
	each(secNamedLocations, raw.NamedLocations, func(e json.RawMessage) error {
		v, err := directory.NamedLocations.Decode(e)
		if err == nil {
			m.NamedLocations = append(m.NamedLocations, *v)
		}
		return err
	})
	each(secCAPolicies, raw.CAPolicies, func(e json.RawMessage) error {
		p, _, err := access.ParsePolicy(e)
		if err == nil {
			m.ConditionalAccessPolicies = append(m.ConditionalAccessPolicies, *p)
		}
		return err
	})
	each(secRoleDefinitions, raw.RoleDefinitions, func(e json.RawMessage) error {
		defs, err := rbac.ParseRoleDefinitions(e)
		if err == nil {
			m.RoleDefinitions = append(m.RoleDefinitions, defs...)
		}
		return err
	})
	each(secDenyAssignments, raw.DenyAssignments, func(e json.RawMessage) error {
		d, err := rbac.ParseDenyAssignment(e)
		if err == nil {
			m.DenyAssignments = append(m.DenyAssignments, d)
		}
		return err
	})
	each(secDirectoryRoles, raw.DirectoryRoleAssignments, func(e json.RawMessage) error {
		var v DirectoryRoleAssignment
		err := strictjson.Unmarshal(e, &v)
		if err == nil {
			m.DirectoryRoleAssignments = append(m.DirectoryRoleAssignments, v)
		}
		return err
	})
	each(secRoleAssignments, raw.RoleAssignments, func(e json.RawMessage) error {
		var v RoleAssignment
		err := strictjson.Unmarshal(e, &v)
		if err == nil {
			m.RoleAssignments = append(m.RoleAssignments, v)
		}
		return err
	})
	each(secIdentityProviders, raw.IdentityProviders, func(e json.RawMessage) error {
		v, err := decodeIdentityProvider(e, b.lookupEnv)
		if err == nil {
			m.IdentityProviders = append(m.IdentityProviders, v)
		}
		return err
	})
	each(secAppRoutes, raw.AppRoutes, func(e json.RawMessage) error {
		v, err := directory.AppRoutes.Decode(e)
		if err == nil {
			m.AppRoutes = append(m.AppRoutes, *v)
		}
		return err
	})
}

// decodeGroup decodes a manifest group: "members" holds references, the
// rest is a Graph group decoded as the directory decodes one.
func decodeGroup(data json.RawMessage) (Group, error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil || top == nil {
		_, err := directory.Groups.Decode(data) // explains what is wrong
		if err == nil {
			err = strictjson.Errorf("", "must be an object")
		}
		return Group{}, err
	}
	var g Group
	if raw, ok := top["members"]; ok {
		delete(top, "members")
		if err := strictjson.Unmarshal(raw, &g.Members); err != nil {
			var fe *strictjson.FieldError
			if errors.As(err, &fe) {
				return Group{}, strictjson.Errorf(joinPath("members", fe.Path), "%s", fe.Message)
			}
			return Group{}, err
		}
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return Group{}, fmt.Errorf("decode group: %w", err)
	}
	dg, err := directory.Groups.Decode(rest)
	if err != nil {
		return Group{}, err
	}
	g.GraphGroup = dg.GraphGroup
	return g, nil
}

// finish checks the merged manifest for duplicates and returns it.
func (b *builder) finish() (*Manifest, error) {
	if !b.errs.full() {
		for _, err := range duplicates(b.m) {
			b.errs.add(err)
		}
	}
	if err := b.errs.err(); err != nil {
		return nil, err
	}
	return b.m, nil
}
