//go:build !faultinject

package app

import (
	"bytes"
	"strings"
	"testing"
)

// TestNoFaultFlags: a production build has no fault injection flags.
func TestNoFaultFlags(t *testing.T) {
	for _, flag := range []string{"--inject-faults=dup=0.5", "--inject-delay=1s"} {
		var out, errb bytes.Buffer
		code := Main([]string{"--id", "w1", flag}, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "unknown flag") {
			t.Errorf("%s: exit %d, %q; want exit 2, unknown flag", flag, code, errb.String())
		}
	}
}
