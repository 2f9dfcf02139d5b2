// Package browsertest drives a real headless Chromium from the tests of
// cofactor's web pages: it loads a page, reads what the browser rendered
// (text as shown, element counts, attributes), follows links and submits
// forms, and saves screenshots.
//
// # The browser
//
// Start looks for Chromium in $COFACTOR_CHROMIUM, then for chromium,
// chromium-browser, google-chrome and google-chrome-stable on the PATH. When
// none is found the test is skipped with a message that says how to
// install one (Debian: apt-get install -y chromium; .ci/run installs it).
// Browser tests are skipped with -short as well.
// Every Start launches a browser of its own with a fresh profile directory,
// headless, without sandbox (tests run as root in CI), GPU, QUIC, first-run
// screens, background networking, component updates or sync; it is closed,
// and its processes are waited for, when the test ends.
//
// # Screenshots
//
// Page.Screenshot writes a full-page PNG named after the test into
// $COFACTOR_SCREENSHOTS when it is set (relative paths are taken from the
// repository root, so COFACTOR_SCREENSHOTS=bench/results/ui puts them
// there from any package), else into the test's temporary directory.
package browsertest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Environment variables read by Start and Page.Screenshot.
const (
	// EnvChromium names the browser binary.
	EnvChromium = "COFACTOR_CHROMIUM"
	// EnvScreenshots names the directory screenshots are written to.
	EnvScreenshots = "COFACTOR_SCREENSHOTS"
)

// ActionTimeout bounds one browser action (a navigation, a query).
const ActionTimeout = 30 * time.Second

// candidates are the browser names looked for on the PATH, in order.
var candidates = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Find returns the browser binary's path, or an error saying what is
// missing.
func Find() (string, error) {
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("$%s=%s: %w", EnvChromium, p, err)
		}
		return p, nil
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium on the PATH (looked for %s; set $%s to another binary)",
		strings.Join(candidates, ", "), EnvChromium)
}

// Browser is one headless Chromium.
type Browser struct {
	ctx     context.Context // the browser's first tab: keeps it running
	headers network.Headers
}

// Option configures Start.
type Option func(*Browser)

// WithToken has every request of the browser's pages carry the bearer
// token as the password of HTTP Basic authentication, as a browser sends
// it after the login prompt of a guarded page.
func WithToken(token string) Option {
	return func(b *Browser) {
		b.headers["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte("cofactor:"+token))
	}
}

// Start launches a browser for t and closes it when t ends. It skips t
// when no browser is installed.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	if testing.Short() {
		// CI runs the suite twice, once with -short -race: the pages are
		// checked in the full run; the browser adds nothing to the race
		// detector's findings.
		t.Skip("browser test skipped with -short")
	}
	path, err := Find()
	if err != nil {
		t.Skipf("browser test skipped: %v; install one (Debian: apt-get install -y chromium) to run it", err)
	}
	b := &Browser{headers: network.Headers{}}
	for _, o := range opts {
		o(b)
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1200, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		_ = chromedp.Cancel(cctx) // a browser that will not close is killed below
		cancel()
		allocCancel()
	})
	// The first action on the context starts the browser, which lives as
	// long as the context of that action: it takes no timeout (chromedp
	// bounds the start itself).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	b.ctx = ctx
	return b
}

// Page is one tab of a browser.
type Page struct {
	t   testing.TB
	ctx context.Context
	// Status is the HTTP status of the document last loaded.
	Status int
}

// Open opens url in a new tab and waits until it has loaded.
func (b *Browser) Open(t testing.TB, url string) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	p := &Page{t: t, ctx: ctx}
	// As for the browser: the first action opens the tab, which lives as
	// long as that action's context.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browser: opening a tab: %v", err)
	}
	if len(b.headers) > 0 {
		headers := b.headers
		p.do(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
				return chromedp.Void{}, err
			}
			_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: headers})
			return chromedp.Void{}, err
		})
	}
	p.navigate(chromedp.Navigate(url))
	return p
}

// do runs actions with the action timeout, failing the test on error.
func (p *Page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// navigate runs actions that load a document and records its status.
func (p *Page) navigate(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		p.t.Fatalf("browser: %v", err)
	}
	p.Status = int(resp.Status)
}

// Go loads url in the page's tab.
func (p *Page) Go(url string) {
	p.t.Helper()
	p.navigate(chromedp.Navigate(url))
}

// Click clicks the first element matching the CSS selector sel and waits
// for the document it leads to (a link, or a form's submit button).
func (p *Page) Click(sel string) {
	p.t.Helper()
	p.navigate(chromedp.Click(chromedp.CSS(sel)))
}

// Fill sets the value of the first input matching sel.
func (p *Page) Fill(sel, value string) {
	p.t.Helper()
	p.do(chromedp.SetValue(chromedp.CSS(sel), value))
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](p *Page, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.t.Fatalf("browser: evaluating %s: %v", js, err)
	}
	return v
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Texts returns the rendered text (innerText: what a reader sees) of every
// element matching the CSS selector sel, in document order; "" for an
// element that is not rendered (display: none, or inside one). SVG
// elements, which have no innerText, give their text content.
func (p *Page) Texts(sel string) []string {
	p.t.Helper()
	return eval[[]string](p, `Array.from(document.querySelectorAll(`+jsString(sel)+`), e => e.getClientRects().length ? (e.innerText ?? e.textContent).trim() : "")`)
}

// Text returns the rendered text of the first element matching sel,
// failing the test when there is none.
func (p *Page) Text(sel string) string {
	p.t.Helper()
	texts := p.Texts(sel)
	if len(texts) == 0 {
		p.t.Fatalf("%s: no element matches %q", p.URL(), sel)
	}
	return texts[0]
}

// Count returns how many elements match sel.
func (p *Page) Count(sel string) int {
	p.t.Helper()
	return eval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`)
}

// Attr returns attribute name of the first element matching sel ("" when
// it has none), failing the test when no element matches.
func (p *Page) Attr(sel, name string) string {
	p.t.Helper()
	v := eval[*string](p, `(e => e ? (e.getAttribute(`+jsString(name)+`) ?? "") : null)(document.querySelector(`+jsString(sel)+`))`)
	if v == nil {
		p.t.Fatalf("%s: no element matches %q", p.URL(), sel)
	}
	return *v
}

// Visible reports whether the first element matching sel takes space on
// the page (is rendered with a non-empty box).
func (p *Page) Visible(sel string) bool {
	p.t.Helper()
	return eval[bool](p, `(e => !!e && e.getClientRects().length > 0 && e.getBoundingClientRect().width > 0)(document.querySelector(`+jsString(sel)+`))`)
}

// URL is the address of the document in the tab.
func (p *Page) URL() string {
	p.t.Helper()
	return eval[string](p, `document.location.href`)
}

// Title is the document's title.
func (p *Page) Title() string {
	p.t.Helper()
	return eval[string](p, `document.title`)
}

// Screenshot saves a full-page PNG as NAME.png (see the package doc for
// the directory) and returns its path.
func (p *Page) Screenshot(name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("browser: screenshot: %v", err)
	}
	dir, err := screenshotDir(p.t)
	if err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot of %s: %s", p.URL(), path)
	return path
}

// screenshotDir is $COFACTOR_SCREENSHOTS (relative to the repository
// root), made if needed, or the test's temporary directory.
func screenshotDir(t testing.TB) (string, error) {
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		return t.TempDir(), nil
	}
	if !filepath.IsAbs(dir) {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, dir)
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// repoRoot is the directory holding go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("browsertest: no go.mod above the working directory")
		}
		dir = parent
	}
}
