// Package worker owns the worker runtime: it registers and heartbeats over
// NATS, runs the commands of the coordinator leader (partition the input
// into the block store, load its assigned blocks, solve phases, evaluate,
// assemble the snapshot), and serves the factor rows of the blocks it owns
// to the other workers.
//
// # Transport
//
// The worker reaches the coordinators, the other workers, the block store
// and the snapshot stores only through [Transport], the small interface
// this package declares: NATS in production (a connection dialled from
// Config.NATSURL, or one passed with [WithConn]), an in-memory network in
// the package's fast tests ([WithTransport]).
//
// # Data flow of a phase
//
// For each block it owns on the phase's side, the worker fetches exactly
// the other side's rows that the block's routing table names, from their
// owners, by request/reply in chunks under the server's max_payload; rows
// of blocks it owns itself are copied locally. It solves the block with
// als.Solver.UpdateBlock, keeps the result as a new version of the block
// (the previous version stays until the next one exists, so a phase can be
// re-run), and reports the statistics to the leader until acknowledged.
//
// # Idempotency
//
// A command is identified by (job, epoch, type, iteration, side). A repeat
// of one that is running is ignored; a repeat of one that finished is
// answered by re-sending its reports. Phases are deterministic, so a
// re-run after a leader change computes the same rows.
package worker
