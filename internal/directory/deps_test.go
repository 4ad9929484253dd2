package directory

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package at the bottom of the dependency graph: of
// Verity's packages it may import only store, strictjson and schedule (never api,
// proxy, cmd or any domain package above it).
func TestImports(t *testing.T) {
	t.Parallel()
	const module = "github.com/verityhq/verity/"
	allowed := map[string]bool{module + "internal/store": true, module + "internal/strictjson": true, module + "internal/schedule": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, module) && !allowed[path] {
				t.Errorf("%s imports %s; directory may import only store, strictjson and schedule", file, path)
			}
		}
	}
}
