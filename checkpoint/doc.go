// Package checkpoint owns trained factors at rest: the snapshot format,
// the stores that hold snapshots (a directory on a local or shared
// filesystem, or the NATS JetStream Object Store), the pointer to each
// model's newest published snapshot, retention, and the reader API that
// serving layers use.
//
// # Snapshots
//
// A snapshot is a set of files under one ID: one factor file per block of
// each side ("users.0000.cfcf", "items.0003.cfcf", …), for the final
// snapshot of a job one file per user block with the items each user
// trained on ("seen.0000.cfsn"), and a manifest ("manifest.json") listing
// every file with its size and CRC-32C, the model's facts (model, job,
// iteration, rank, row counts, λ, α) and its metrics. Block files are
// written first, each to a temporary name, synced and renamed; the manifest
// is written last. A snapshot exists once its manifest does (in a cluster:
// once the manifest is committed in raft and then written), so a reader
// never sees a partial one.
//
// # Factor file format
//
// Little-endian: magic "CFCF", uint32 version (2), uint8 side, uint32
// block, uint32 rank, uint64 rows, then for each row its external ID
// (uint32 length + bytes), then rows int32 rating counts, then rows×rank
// float32 factors row-major, then a uint32 CRC-32C (Castagnoli) of all
// preceding bytes. Every count is checked against the bytes present before
// anything is allocated.
//
// # Reading
//
// [Repo.Open] reads a snapshot, checks every file's size and CRC against
// the manifest and the file's own checksum, and returns a [Model] with
// lookups by external ID. A damaged file is refused with an error that
// names it (wrapping [ErrCorrupt]). [Repo.Latest] and [Repo.Watch] follow
// the pointer "latest.<model>" to the newest published snapshot.
package checkpoint
