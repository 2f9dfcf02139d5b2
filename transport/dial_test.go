package transport

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestDialGivesUp(t *testing.T) {
	url := "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	nc, err := dial(url, "test", 600*time.Millisecond, nil)
	if err == nil {
		nc.Close()
		t.Fatal("connected to nothing")
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %v, want about 600ms", d)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("err = %v, want it to name %s", err, url)
	}
}

func TestDialNonRetryable(t *testing.T) {
	start := time.Now()
	_, err := dial("nats://127.0.0.1:1", "bad", 5*time.Second, []nats.Option{nats.Timeout(-1)})
	if err == nil {
		t.Fatal("connected")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("retried a bad option for %v", d)
	}
}
