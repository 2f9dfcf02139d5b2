//go:build faultinject

package app

import (
	"bytes"
	"strings"
	"testing"
)

// TestFaultFlags: the faultinject build takes the fault suite's flags and
// refuses a bad spec as a usage error.
func TestFaultFlags(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"--id", "w1", "--inject-faults", "dup=2"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "bad fault injection spec") {
		t.Errorf("exit %d, %q; want exit 2 naming the bad spec", code, errb.String())
	}
	errb.Reset()
	code = Main([]string{"--id", "w1", "--inject-delay", "-1s"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "solve delay") {
		t.Errorf("exit %d, %q; want exit 2 naming the solve delay", code, errb.String())
	}
}
