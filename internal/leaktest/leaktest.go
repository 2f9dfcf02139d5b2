// Package leaktest holds the goroutine-leak checks' exceptions, shared by
// every package's TestMain.
package leaktest

import "go.uber.org/goleak"

// IgnoredLeaks are goroutines that outlive tests through no fault of
// ours: the JetStream Object Store's Put starts a reconnect watcher per
// call that is left blocked on a nil channel when its cleanup wins the race
// (nats.go v1.55.0, jetstream/publish.go resetPendingAcksOnReconnect).
func Ignored() []goleak.Option {
	return []goleak.Option{goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect")}
}
