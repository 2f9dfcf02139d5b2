package serve

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cofactor-ml/cofactor/internal/browsertest"
)

// getPage fetches a page without following redirects.
func getPage(t *testing.T, ts *httptest.Server, path string) (int, http.Header, string) {
	t.Helper()
	c := *ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// cells returns the item cells of the table with the given id, in order.
func cells(page, table string) []string {
	start := strings.Index(page, `<table id="`+table+`">`)
	if start < 0 {
		return nil
	}
	end := strings.Index(page[start:], "</table>")
	var out []string
	for _, m := range regexp.MustCompile(`<td class="item">(?:<a [^>]*>)?([^<]*)`).FindAllStringSubmatch(page[start:start+end], -1) {
		out = append(out, m[1])
	}
	return out
}

// TestUIPage: the try-it page answers what the API answers, says when a
// user got the popular fallback, and shows the API's input errors with
// their status.
func TestUIPage(t *testing.T) {
	t.Parallel()
	s, ts, _ := testServer(t)
	code, h, _ := getPage(t, ts, "/")
	if code != http.StatusFound || h.Get("Location") != "/ui" {
		t.Errorf("GET /: %d to %q, want a redirect to /ui", code, h.Get("Location"))
	}
	for _, tc := range []struct {
		name, path string
		code       int
		table      string
		items      []string
		contains   []string
	}{
		{"empty form", "/ui", 200, "", nil, []string{"Snapshot in service: <b>s1</b>", "rank 2, 3 users × 6 items", `href="/ui?user=u0"`, `href="/ui?item=i1"`}},
		{"a user", "/ui?user=u0&k=3", 200, "recommendations", []string{"i3", "i0", "i2"}, []string{`href="/v1/recommend?k=3&amp;user=u0"`}},
		{"exclude seen", "/ui?user=u0&k=2&exclude_seen=true", 200, "recommendations", []string{"i0", "i4"}, []string{`checked="checked"`}},
		{"unknown user", "/ui?user=stranger&k=2", 200, "recommendations", []string{"i1", "i4"}, []string{`id="fallback"`, "is not in the snapshot"}},
		{"similar", "/ui?item=i1&k=2", 200, "similar", []string{"i2", "i0"}, []string{`href="/v1/similar?item=i1&amp;k=2"`}},
		{"bad k", "/ui?user=u0&k=0", 400, "", nil, []string{`id="error"`, "k &#34;0&#34;: want an integer from 1 to 1000"}},
		{"unknown item", "/ui?item=zzz", 404, "", nil, []string{"item &#34;zzz&#34; is not in snapshot s1"}},
		{"unknown parameter", "/ui?usr=u0", 400, "", nil, []string{"unknown parameter &#34;usr&#34;"}},
		{"markup in an ID is text", "/ui?user=%3Cb%3Ex", 200, "recommendations", []string{"i1", "i4", "i0", "i2", "i3", "i5"}, []string{"for user &lt;b&gt;x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, page := getPage(t, ts, tc.path)
			if code != tc.code || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s, want %d text/html", code, h.Get("Content-Type"), tc.code)
			}
			if tc.table != "" {
				if got := cells(page, tc.table); strings.Join(got, ",") != strings.Join(tc.items, ",") {
					t.Errorf("table %s: %v, want %v", tc.table, got, tc.items)
				}
			}
			for _, want := range tc.contains {
				if !strings.Contains(page, want) {
					t.Errorf("the page lacks %s", want)
				}
			}
		})
	}
	// Two users were unknown: "stranger" and "<b>x".
	if got := testutil.ToFloat64(s.metrics.fallbacks.WithLabelValues("ui")); got != 2 {
		t.Errorf("cofactor_serve_fallback_total{endpoint=\"ui\"} = %g, want 2", got)
	}
	if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues("ui", "400")); got != 2 {
		t.Errorf("cofactor_serve_requests_total{endpoint=\"ui\",code=\"400\"} = %g, want 2", got)
	}

	empty, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ts2 := httptest.NewServer(empty.Handler())
	defer ts2.Close()
	if code, _, page := getPage(t, ts2, "/ui"); code != 503 || !strings.Contains(page, "no snapshot loaded yet") {
		t.Errorf("before a snapshot: %d %q", code, page)
	}
}

// TestUIBrowser loads the try-it page in a real browser: the redirect from
// /, the snapshot line, a click on a sample user, the fallback note, the
// similar-items form, and the JSON link.
func TestUIBrowser(t *testing.T) {
	_, ts, _ := testServer(t)
	b := browsertest.Start(t)
	p := b.Open(t, ts.URL+"/")
	if p.Status != 200 || !strings.HasSuffix(p.URL(), "/ui") {
		t.Fatalf("/ led to %s (%d)", p.URL(), p.Status)
	}
	if got := p.Text("#snapshot"); !strings.Contains(got, "Snapshot in service: s1") || !strings.Contains(got, "3 users × 6 items") {
		t.Errorf("snapshot line %q", got)
	}
	if got := p.Texts("a.sample-user"); strings.Join(got, ",") != "u0,u1,u2" {
		t.Errorf("sample users %v", got)
	}
	p.Click("a.sample-user")
	if got := p.Texts("#recommendations td.item"); strings.Join(got, ",") != "i3,i0,i2,i4,i1,i5" {
		t.Errorf("u0's items %v", got)
	}
	if got := p.Texts("#recommendations td.score")[0]; got != "2.0000" {
		t.Errorf("u0's first score %q", got)
	}
	if p.Count("#fallback") != 0 {
		t.Error("a known user is shown the fallback note")
	}
	p.Screenshot("serve-ui-recommend")

	p.Fill("#recommend-form input[name=user]", "stranger")
	p.Fill("#recommend-form input[name=k]", "2")
	p.Click("#recommend-form button")
	if !p.Visible("#fallback") || !strings.Contains(p.Text("#fallback"), "stranger is not in the snapshot") {
		t.Errorf("no visible fallback note for an unknown user")
	}
	if got := p.Texts("#recommendations td.item"); strings.Join(got, ",") != "i1,i4" {
		t.Errorf("popular items %v", got)
	}

	p.Fill("#similar-form input[name=item]", "i1")
	p.Click("#similar-form button")
	if got := p.Texts("#similar td.item"); len(got) == 0 || got[0] != "i2" {
		t.Errorf("items similar to i1: %v", got)
	}
	p.Click("#api-link")
	if got := p.Text("body"); !strings.Contains(got, `"item":"i1"`) || !strings.Contains(got, `"snapshot":"s1"`) {
		t.Errorf("the JSON link shows %q", got)
	}
}
