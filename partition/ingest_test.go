package partition

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestReadFileParallelMatchesSequential reads many inputs both ways, with
// files cut into ranges of a few hundred bytes, and wants the same
// Builder (IDs in order of first appearance, ratings in file order), the
// same statistics and the same error.
func TestReadFileParallelMatchesSequential(t *testing.T) {
	prev := minParallelBytes
	minParallelBytes = 1
	defer func() { minParallelBytes = prev }()

	rng := rand.New(rand.NewPCG(1, 2))
	lines := func(n int, sep string, bad map[int]string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if l, ok := bad[i]; ok {
				b.WriteString(l + "\n")
				continue
			}
			// Few users and items: duplicates, also across ranges.
			fmt.Fprintf(&b, "%d%s%d%s%d.5\n", rng.IntN(40)+1, sep, rng.IntN(30)+1, sep, rng.IntN(5))
		}
		return b.String()
	}
	cases := map[string]string{
		"csv header":          "user,item,rating\n" + lines(400, ",", nil),
		"csv no header":       lines(400, ",", nil),
		"csv bom crlf blanks": "\xEF\xBB\xBFuserId,movieId,rating\r\n\r\n" + strings.ReplaceAll(lines(300, ",", map[int]string{50: "", 51: "  "}), "\n", "\r\n"),
		"csv string ids":      "u,i,r\n" + strings.ReplaceAll(lines(300, ",", nil), "1,", "a1,"),
		"csv leading zeros":   "u,i,r\n7,07,1\n07,7,2\n" + lines(300, ",", nil) + "0,00,3\n",
		"csv bad late":        lines(500, ",", map[int]string{420: "1,2,x"}),
		"csv bad early":       lines(500, ",", map[int]string{3: "1,2", 420: "1,,3"}),
		"csv quote late":      lines(300, ",", map[int]string{250: "\"1\",\"2\n\",3"}),
		"csv quote bad":       lines(300, ",", map[int]string{250: "1,2\"x,3"}),
		"csv no final nl":     strings.TrimSuffix(lines(300, ",", nil), "\n"),
		"blank first range":   strings.Repeat("\n", 2000) + "user,item,rating\n" + lines(100, ",", nil),
		"tsv":                 lines(400, "\t", map[int]string{200: "9\t9"}),
		"tsv header":          "user\titem\trating\n" + lines(400, "\t", nil),
		"movielens":           lines(400, "::", nil),
		"mm":                  "%%MatrixMarket matrix coordinate real general\n3 3 2\n1 2 3\n2 3 4\n",
		"undetectable":        "abc\n" + lines(100, ",", nil),
		"only blanks":         strings.Repeat("\n \n", 500),
		"header only":         "user,item,rating\n" + strings.Repeat("\n", 500),
		"long line":           lines(100, ",", nil) + strings.Repeat("x", maxLineLen+10) + "\n" + lines(100, ",", nil),
	}
	dir := t.TempDir()
	for name, content := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, policy := range []BadLinePolicy{FailOnBadLine, SkipBadLine} {
			for _, implicit := range []bool{false, true} {
				opts := ScanOptions{OnBadLine: policy, Implicit: implicit}
				want, wst, werr := ReadFile(context.Background(), path, opts)
				for _, threads := range []int{2, 3, 8} {
					got, gst, gerr := ReadFileParallel(context.Background(), path, opts, threads)
					tag := fmt.Sprintf("%s, policy %d, implicit %v, %d threads", name, policy, implicit, threads)
					if fmt.Sprint(gerr) != fmt.Sprint(werr) {
						t.Fatalf("%s: error %v, want %v", tag, gerr, werr)
					}
					if werr != nil {
						continue
					}
					if gst != wst {
						t.Fatalf("%s: stats %+v, want %+v", tag, gst, wst)
					}
					if !reflect.DeepEqual(got.Users.IDs(), want.Users.IDs()) || !reflect.DeepEqual(got.Items.IDs(), want.Items.IDs()) {
						t.Fatalf("%s: dictionaries differ", tag)
					}
					if !reflect.DeepEqual(got.U, want.U) || !reflect.DeepEqual(got.I, want.I) || !reflect.DeepEqual(got.R, want.R) {
						t.Fatalf("%s: ratings differ", tag)
					}
				}
			}
		}
	}
}

func TestDictNumericAndStringIDs(t *testing.T) {
	d := NewDict()
	ids := []string{"7", "07", "+7", "0", "16777215", "16777216", "123456789", "a", "", "99999999"}
	for i, id := range ids {
		if got := d.Add([]byte(id)); got != int32(i) {
			t.Fatalf("Add(%q) = %d, want %d", id, got, i)
		}
	}
	for i, id := range ids {
		if got := d.Add([]byte(id)); got != int32(i) {
			t.Fatalf("second Add(%q) = %d, want %d", id, got, i)
		}
		if got, ok := d.Lookup([]byte(id)); !ok || got != int32(i) {
			t.Fatalf("Lookup(%q) = %d, %v", id, got, ok)
		}
		if got, ok := d.LookupString(id); !ok || got != int32(i) {
			t.Fatalf("LookupString(%q) = %d, %v", id, got, ok)
		}
	}
	for _, id := range []string{"8", "008", "1", "16777214", "b"} {
		if _, ok := d.LookupString(id); ok {
			t.Fatalf("LookupString(%q) found an absent ID", id)
		}
	}
	d2, ok := DictFromIDs(ids)
	if !ok || !reflect.DeepEqual(d2.IDs(), ids) {
		t.Fatal("DictFromIDs")
	}
	for i, id := range ids {
		if got, ok := d2.LookupString(id); !ok || got != int32(i) {
			t.Fatalf("DictFromIDs: LookupString(%q) = %d, %v", id, got, ok)
		}
	}
	if _, ok := DictFromIDs([]string{"1", "2", "1"}); ok {
		t.Fatal("duplicate numeric ID not reported")
	}
	if _, ok := DictFromIDs([]string{"x", "y", "x"}); ok {
		t.Fatal("duplicate string ID not reported")
	}
}
