package cyclo

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"testing"
)

func TestComplexity(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"straight", `x := 1; _ = x`, 1},
		{"if else", `if a { return } else if b { return }`, 3},
		{"loops", `for i := 0; i < 3; i++ {}; for range s {}`, 3},
		{"switch", `switch x { case 1, 2: case 3: default: }`, 3},
		{"select", `select { case <-c: case c <- 1: default: }`, 3},
		{"type switch", `switch v.(type) { case int: case string: }`, 3},
		{"boolean", `_ = a && b || c`, 3},
		{"closure", `f := func() { if a {} }; f()`, 2},
	} {
		src := "package p\nfunc f() {\n" + tc.body + "\n}\n"
		f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := Complexity(f.Decls[0].(*ast.FuncDecl)); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", "package p\ntype T struct{}\nfunc (t *T) M(a, b bool) { if a && b {} }\nfunc g() {}\n")
	write("a_test.go", "package p\nfunc h(a bool) { if a {}; if a {}; if a {} }\n")
	write("b.go", "//go:build never\n\npackage p\nfunc k(a bool) { if a {}; if a {} }\n")
	fs, err := Dir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		n    int
	}{{"T.M", 3}, {"k", 3}, {"g", 1}}
	if len(fs) != len(want) {
		t.Fatalf("functions %v, want %v", fs, want)
	}
	for i, w := range want {
		if fs[i].Name != w.name || fs[i].Complexity != w.n {
			t.Errorf("function %d: %v, want %s %d", i, fs[i], w.name, w.n)
		}
	}
	over, err := Over(2, dir)
	if err != nil || len(over) != 2 {
		t.Errorf("Over(2): %v, %v; want T.M and k", over, err)
	}
}
