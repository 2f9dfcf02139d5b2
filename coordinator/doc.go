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
// # Determinism
//
// The state machine's Apply never reads a clock or random source: times
// and job IDs are chosen by the proposer and carried in the command.
package coordinator
