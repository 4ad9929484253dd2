package access

import (
	_ "embed"
	"sync"

	"github.com/verityhq/verity/internal/directory"
)

//go:embed appgroups/conditional-access-app-groups.json
var builtinAppGroupsJSON []byte

// builtinAppGroups is parsed once; the embedded file is part of the
// binary, so a failure to parse it is a build defect caught by the tests.
var builtinAppGroups = sync.OnceValues(func() (map[string][]string, error) {
	return ParseAppGroups(builtinAppGroupsJSON)
})

// BuiltinAppGroups returns the members (application ids) of the
// application groups Graph policies name, Office365 and
// MicrosoftAdminPortals, from the reference file compiled into Verity
// (see appgroups/README.md for its sources and gaps). The caller owns the
// returned map.
func BuiltinAppGroups() map[string][]string {
	m, err := builtinAppGroups()
	if err != nil {
		panic("access: embedded app groups: " + err.Error())
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// OptionsFor is how a node compiles policies: against the named locations
// of its directory snapshot and the built-in application groups.
func OptionsFor(dir *directory.Snapshot) CompileOptions {
	locs := dir.Locations()
	named := make([]directory.NamedLocation, len(locs))
	for i, l := range locs {
		named[i] = l.NamedLocation
	}
	return CompileOptions{NamedLocations: named, AppGroups: BuiltinAppGroups()}
}
