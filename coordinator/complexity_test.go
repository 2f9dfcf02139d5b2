package coordinator

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxComplexity bounds the cyclomatic complexity of every function of
// the orchestration layer (issue 11): beyond it a function does several
// things and should be split.
const maxComplexity = 25

// complexityDirs are the packages held to maxComplexity, relative to
// this one; their test files are not.
var complexityDirs = []string{"."} // worker/ joins once its job loop is split (issue 11)

// TestComplexity computes each function's cyclomatic complexity (1, plus
// one per if, for, range, non-default case or select clause, && and ||,
// counting the function literals inside it) and fails above
// maxComplexity, naming the functions.
func TestComplexity(t *testing.T) {
	var over []string
	most := ""
	mostN := 0
	for _, dir := range complexityDirs {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(fset, path, src, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				n := cyclomatic(fn)
				name := fmt.Sprintf("%s %s (%d)", fset.Position(fn.Pos()), funcName(fn), n)
				if n > mostN {
					most, mostN = name, n
				}
				if n > maxComplexity {
					over = append(over, name)
				}
			}
		}
	}
	sort.Strings(over)
	t.Logf("most complex: %s", most)
	if len(over) > 0 {
		t.Fatalf("%d functions above cyclomatic complexity %d:\n%s", len(over), maxComplexity, strings.Join(over, "\n"))
	}
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	if s, ok := typ.(*ast.StarExpr); ok {
		typ = s.X
	}
	if ix, ok := typ.(*ast.IndexExpr); ok {
		typ = ix.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

func cyclomatic(fn *ast.FuncDecl) int {
	n := 1
	ast.Inspect(fn.Body, func(node ast.Node) bool {
		switch x := node.(type) {
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
