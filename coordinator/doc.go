// Package coordinator owns the truth about a cofactor cluster: a raft
// group (hashicorp/raft with raft-boltdb) whose replicated state machine
// holds jobs (spec, state, progress, metrics history), workers, block
// assignments, committed phases and servers; the job driver that runs on
// the leader; and the JSON HTTP API that every coordinator serves.
//
// # Consistency
//
// Every step of a job is committed to raft before it is acted on: a new
// leader reads the state machine and resumes exactly where the old one
// stopped, re-issuing the current phase. Workers answer a repeated phase
// command from the result they already hold, and phases are deterministic,
// so a leader change never changes the factors.
//
// Reads are served by the coordinator that receives them, from its copy of
// the state (which may trail the leader by the replication delay) and say
// which node answered. Writes are forwarded to the leader.
//
// # The log holds control only
//
// A log entry names things: a job's spec, a block → worker assignment, a
// phase's summed statistics, a state transition, and the ID (name, size,
// SHA-256) of a blob. Bulk data whose size grows with the block layout —
// the partition summary's P×Q row needs and per-block sizes, a
// checkpoint's manifest with a file per block — is written by the leader
// to the block store (wire.BlockBucket) before the entry that names it is
// proposed; readers load it by that name, check the digest and cache it
// (blobs.go). Worker liveness is not replicated: every coordinator hears
// the heartbeats and keeps the last one in memory; the leader commits
// only changes (a worker registered, lost, drained). A new leader waits
// one Config.WorkerTimeout before declaring an unheard worker lost.
// Finished jobs are kept up to Config.RetainJobs and Config.RetainAge,
// then dropped with their logs by a committed prune.
//
// # The state machine's contract
//
// Apply receives entries in log order, each exactly once per state machine
// instance, and may assume nothing else: an entry may have been proposed
// by an earlier leader against a state that has changed since, so each
// kind checks its preconditions (the job exists and is not finished, the
// epoch is current, the phase is the next one) and refuses with a
// sentinel error (ErrStale, ErrCommand, ErrUnknownJob, ErrDuplicate, …)
// leaving the state unchanged. Apply is deterministic: it reads the
// entry (kind, payload, the proposer's time) and the state only — never a
// clock, a random source, the network or the blob store — so every member
// computes the same state. Entries are JSON {v, type, time, payload}, one
// payload type per kind (command.go), each applied by its own method
// (apply.go); version-1 entries of earlier builds are still read
// (command_v1.go).
//
// Snapshot copies the state under the read lock and encodes it outside
// it, while Apply goes on. Restore replaces the whole state — jobs,
// workers, servers, schedules — with the snapshot's, and wakes every
// waiter of Changed; nothing of the state before survives. The applied
// index and the in-memory liveness are not part of it.
//
// # Determinism
//
// The state machine's Apply never reads a clock or random source: times
// and job IDs are chosen by the proposer and carried in the command.
package coordinator
