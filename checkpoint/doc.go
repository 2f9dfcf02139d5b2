// Package checkpoint owns the on-disk form of trained factors: a snapshot
// directory holding a manifest (manifest.json: model facts, metrics, and
// every file's size and CRC-32C), one binary factor file per side, and the
// external ID lists in factor-row order.
//
// # Atomicity
//
// WriteDir builds the snapshot under a temporary name beside the target,
// fsyncs every file, and renames it into place with the manifest written
// last: a reader never sees a partial snapshot, and a failed write leaves
// nothing at the target path.
//
// # Factor file format
//
// Little-endian: magic "CFCF", uint32 version (1), uint32 rank, uint64
// rows, then rows×rank float32 row-major, then a uint32 CRC-32C
// (Castagnoli) of all preceding bytes.
package checkpoint
