// Package cyclo owns the measure of code complexity the repository holds
// itself to: the cyclomatic complexity of each function, counted from the
// syntax tree as gocyclo counts it, so that a test can fail a package
// whose functions grow past a limit.
package cyclo

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Func is one function's complexity.
type Func struct {
	// Name is the function's name, "Type.Method" for a method.
	Name string
	// Pos is where it is declared (file:line:column).
	Pos        string
	Complexity int
}

func (f Func) String() string { return fmt.Sprintf("%s %s: %d", f.Pos, f.Name, f.Complexity) }

// Complexity is 1 plus one for each decision the body makes: if, for and
// range statements, case clauses of switches and selects other than
// default, and the && and || operators. Function literals count towards
// the function that holds them.
func Complexity(fn *ast.FuncDecl) int {
	n := 1
	ast.Inspect(fn, func(x ast.Node) bool {
		switch x := x.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt:
			n++
		case *ast.CaseClause:
			if x.List != nil {
				n++
			}
		case *ast.CommClause:
			if x.Comm != nil {
				n++
			}
		case *ast.BinaryExpr:
			if x.Op == token.LAND || x.Op == token.LOR {
				n++
			}
		}
		return true
	})
	return n
}

// Dir returns the complexity of every function with a body in the Go
// files of dir (not its subdirectories), test files excluded, most
// complex first. Files are read whatever their build tags.
func Dir(dir string) ([]Func, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var out []Func
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			out = append(out, Func{Name: funcName(fn), Pos: fset.Position(fn.Pos()).String(), Complexity: Complexity(fn)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Complexity > out[j].Complexity })
	return out, nil
}

// funcName is "Name" or "Recv.Name".
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if g, ok := t.(*ast.IndexExpr); ok { // a generic type's method
		t = g.X
	}
	if g, ok := t.(*ast.IndexListExpr); ok {
		t = g.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

// Over returns the functions of dirs whose complexity exceeds limit.
func Over(limit int, dirs ...string) ([]Func, error) {
	var out []Func
	for _, d := range dirs {
		fs, err := Dir(d)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			if f.Complexity > limit {
				out = append(out, f)
			}
		}
	}
	return out, nil
}
