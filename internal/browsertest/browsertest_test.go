package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/cofactor-ml/cofactor/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Ignored()...) }

func TestJSString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`a`, `"a"`},
		{`#x > td.score`, `"#x > td.score"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"line\nbreak\u2028", `"line\u000abreak\u2028"`},
	} {
		if got := jsString(tc.in); got != tc.want {
			t.Errorf("jsString(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestBrowser: a page's rendered text (scripts run, hidden text left out),
// counts, attributes, a click on a link and on a form's button, the
// status of a missing page, the token sent as Basic authentication, and
// a screenshot.
func TestBrowser(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		fmt.Fprintf(w, `<!DOCTYPE html><html><head><title>home</title></head><body>
<p id="js">static</p><script>document.getElementById("js").textContent = "from script"</script>
<p class="x">one</p><p class="x" style="display:none">hidden</p><p class="x">three</p>
<p id="auth">%s</p>
<a id="next" href="/next?q=1" data-k="v">next</a>
<form method="get" action="/next"><input id="q" name="q"/><button id="go" type="submit">go</button></form>
</body></html>`, pw)
	})
	mux.HandleFunc("GET /next", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!DOCTYPE html><html><head><title>next</title></head><body><p id="q">%s</p></body></html>`, r.URL.Query().Get("q"))
	})
	ts := httptest.NewServer(mux)
	defer ts.Close()

	b := Start(t, WithToken("s3cret-token-0123456789"))
	p := b.Open(t, ts.URL+"/")
	if p.Status != 200 || p.Title() != "home" {
		t.Fatalf("status %d, title %q", p.Status, p.Title())
	}
	if got := p.Text("#js"); got != "from script" {
		t.Errorf("#js: %q, want the script's text", got)
	}
	if got := strings.Join(p.Texts(".x"), ","); got != "one,,three" {
		t.Errorf(".x: %q, want one,,three (hidden text is not rendered)", got)
	}
	if p.Visible(".x[style]") || !p.Visible("#js") {
		t.Error("visibility wrong")
	}
	if n := p.Count("p"); n != 5 {
		t.Errorf("%d paragraphs, want 5", n)
	}
	if got := p.Attr("#next", "data-k"); got != "v" {
		t.Errorf("data-k %q", got)
	}
	if got := p.Text("#auth"); got != "s3cret-token-0123456789" {
		t.Errorf("the server saw the password %q", got)
	}
	shot := p.Screenshot(t.Name())
	if data, err := os.ReadFile(shot); err != nil || !strings.HasPrefix(string(data), "\x89PNG") {
		t.Errorf("screenshot %s: %v, not a PNG", shot, err)
	}
	p.Click("#next")
	if p.Text("#q") != "1" || !strings.HasSuffix(p.URL(), "/next?q=1") {
		t.Errorf("after the click: %s shows %q", p.URL(), p.Text("#q"))
	}
	p.Go(ts.URL + "/")
	p.Fill("#q", "typed")
	p.Click("#go")
	if got := p.Text("#q"); got != "typed" {
		t.Errorf("the form sent %q", got)
	}
	p.Go(ts.URL + "/missing")
	if p.Status != 404 {
		t.Errorf("status of a missing page: %d", p.Status)
	}
}
