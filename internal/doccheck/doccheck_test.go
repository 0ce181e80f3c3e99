package doccheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// moduleRoot is the directory of go.mod, two levels up.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

// undocumented lists, as "file:line: name", every exported name of the
// package in files without a doc comment: functions, methods of exported
// types, types, and constants and variables (a lone spec may use its
// group's comment; in a group of several, each needs its own, above or at
// the end of its line). pkgDoc reports whether any file has a package
// comment.
func undocumented(fset *token.FileSet, files []*ast.File) (missing []string, pkgDoc bool) {
	at := func(n ast.Node, name string) string {
		p := fset.Position(n.Pos())
		return p.Filename + ":" + itoa(p.Line) + ": " + name
	}
	for _, f := range files {
		if f.Doc != nil {
			pkgDoc = true
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() || d.Doc != nil {
					continue
				}
				name := d.Name.Name
				if d.Recv != nil && len(d.Recv.List) == 1 {
					recv := receiverType(d.Recv.List[0].Type)
					if !ast.IsExported(recv) {
						continue // not shown by go doc
					}
					name = recv + "." + name
				}
				missing = append(missing, at(d, name))
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() && s.Doc == nil && (d.Doc == nil || len(d.Specs) > 1) {
							missing = append(missing, at(s, s.Name.Name))
						}
					case *ast.ValueSpec:
						documented := s.Doc != nil || s.Comment != nil || (d.Doc != nil && len(d.Specs) == 1)
						for _, n := range s.Names {
							if n.IsExported() && !documented {
								missing = append(missing, at(n, n.Name))
							}
						}
					}
				}
			}
		}
	}
	return missing, pkgDoc
}

func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestEveryExportedNameHasADocComment fails on each exported name of the
// module without a doc comment, naming its file and line.
func TestEveryExportedNameHasADocComment(t *testing.T) {
	root := moduleRoot(t)
	packages := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (name == "testdata" || name == "bench" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		fset := token.NewFileSet()
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		var files []*ast.File
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, filepath.Join(path, e.Name()), nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			files = append(files, f)
		}
		if len(files) == 0 {
			return nil
		}
		packages++
		missing, pkgDoc := undocumented(fset, files)
		rel, _ := filepath.Rel(root, path)
		if !pkgDoc {
			t.Errorf("package %s (%s) has no package comment", files[0].Name.Name, rel)
		}
		slices.Sort(missing)
		for _, m := range missing {
			r, _ := filepath.Rel(root, m)
			t.Errorf("%s has no doc comment", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if packages < 20 {
		t.Fatalf("checked only %d packages; the walk no longer finds the module's code", packages)
	}
}

// The check itself finds what it is meant to find.
func TestUndocumentedFindsMissingComments(t *testing.T) {
	const src = `// Package p is documented.
package p

// Good is documented.
func Good() {}

func Bad() {}

type T struct{}

// M is documented.
func (T) M() {}

func (*T) N() {}

type hidden struct{}

func (hidden) Exported() {}

const (
	// A is documented.
	A = 1
	B = 2 // B is documented at the end of its line.
	C = 3
)

// Lone is documented by its group.
var (
	Lone = 1
)

var V, w = 1, 2

// Gen is documented.
type Gen[X any] struct{}

func (Gen[X]) G() {}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	missing, pkgDoc := undocumented(fset, []*ast.File{f})
	var names []string
	for _, m := range missing {
		names = append(names, m[strings.LastIndex(m, " ")+1:])
	}
	want := []string{"Bad", "T", "T.N", "C", "V", "Gen.G"}
	if !pkgDoc || !slices.Equal(names, want) {
		t.Fatalf("undocumented = %q (package comment %v); want %q (and true)", names, pkgDoc, want)
	}
}
