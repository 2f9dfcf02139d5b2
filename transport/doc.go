// Package transport owns cofactor's use of NATS: subject names, the binary
// frame that carries factor rows, chunking under the server's max_payload,
// request/reply with timeouts and retries, dialling with credentials and
// TLS, and blob storage in the JetStream Object Store. The embedded
// nats-server of the all-in-one mode and tests is package
// transport/embedded, so that importing transport links no server.
//
// # Subjects
//
// Workers publish heartbeats on [HeartbeatSubject] and send reports to the
// coordinator leader on [ReportSubject], each subject naming the worker. The leader commands a worker on
// [WorkerCmdSubject]; workers fetch factor rows and partial Gram matrices
// from the worker owning a block on [WorkerRowsSubject]. Worker IDs must
// pass [ValidID], which keeps NATS wildcards and token separators out of
// subjects.
//
// # Frames
//
// Factor data travels in a small versioned binary frame (see [AppendFrame]
// for the byte layout): a fixed header naming the job, epoch, iteration,
// side, owning and requesting block and chunk, then the payload (raw
// little-endian float32 rows or float64 Gram entries, never JSON), then a
// CRC-32C of everything before it. [DecodeFrame] bounds every count it
// reads before using it and never trusts the sender. A transfer of many
// rows is cut into chunks that fit the server's max_payload
// ([RowsPerChunk], [ChunkCount], [ChunkBounds]); each chunk is fetched by
// its own request, so a lost or duplicated message costs one retry of one
// chunk, and (job, epoch, iteration, side, block, peer, chunk) in every
// header lets a receiver drop duplicates and stale answers.
//
// # Request/reply
//
// [Request] retries on timeout and on "no responders" with exponential
// backoff. A retried request may reach the responder more than once, so
// every handler behind a request subject must be idempotent.
//
// # Concurrency
//
// The frame and subject functions are pure and safe for concurrent use.
// [Request] may be called from many goroutines on one connection, as
// nats.Conn allows. A [Blobs] is safe for concurrent use; a Get never returns a
// mix of two versions of a blob (see [Blobs.Put]).
package transport
