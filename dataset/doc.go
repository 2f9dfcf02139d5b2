// Package dataset owns named rating datasets kept in the cluster's
// JetStream Object Store, so that a job's input needs no shared
// filesystem: storing a dataset's files in chunks (Put), listing,
// describing and removing datasets, and reading any byte range of a file
// back (Reader) for the workers that ingest its shards.
//
// # Layout
//
// Bucket holds, for a dataset NAME, one object per chunk of each file,
// NAME/GEN/FILE/CHUNK (GEN is a random generation of the put, FILE and
// CHUNK are numbers), and the manifest NAME/manifest: the files with their
// sizes, a SHA-256 each, a CRC-32C per chunk, and the partition.FileIndex
// each (format, newlines per chunk) that lets a job cut the files into
// shards with true line numbers.
//
// # Guarantees
//
// A dataset exists once its manifest is written, and the manifest is
// written last: a put that fails or is interrupted leaves no dataset (its
// chunks are deleted, or, after a crash, stay as unreferenced objects
// until Remove). Putting a name that exists needs Replace: the new chunks
// go to a new generation, the manifest is replaced in one write, and the
// old generation is deleted after it (a job still reading the old one
// then fails with ErrMissingChunk). Of two puts of one name racing each
// other, the manifest written last is the dataset; a put that reads back
// another's manifest reports ErrConflict and deletes its own chunks.
//
// Every chunk read is checked against the manifest (size and CRC-32C; the
// Object Store also checks its own digest): a chunk that is missing or
// damaged is an error wrapping ErrMissingChunk or ErrCorrupt that names
// the dataset, the file and the chunk. Verify reads a whole dataset and
// also checks each file's SHA-256.
//
// # Concurrency
//
// A Store is safe for concurrent use. A Reader is safe for concurrent
// use too, but it caches one chunk: readers that jump around should each
// have their own.
package dataset
