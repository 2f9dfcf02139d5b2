// Package embedded runs a nats-server inside this process, for the
// all-in-one mode and tests: it owns the only import of nats-server in
// cofactor, so that what does not start a server (the workers, the
// snapshot reader, serving layers) does not link one.
//
// # Concurrency
//
// A [Server]'s methods are safe for concurrent use; Shutdown may be
// called more than once.
package embedded
