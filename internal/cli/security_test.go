package cli

import (
	"testing"
)

func TestNATSFlagsRefuseTwoMethods(t *testing.T) {
	t.Setenv("COFACTOR_NATS_PASSWORD", "")
	o := NATSFlags{}
	o.Sec.User, o.Sec.NKeySeedFile = "u", "seed"
	if _, err := o.Security(); err == nil {
		t.Fatal("user and NKey accepted together")
	}
	o = NATSFlags{}
	o.Sec.User = "u"
	if _, err := o.Security(); err == nil {
		t.Fatal("a user without a password accepted")
	}
}
