// Package partition owns ratings ingest and the block layout: parsers for
// the input formats (CSV, TSV, MovieLens "::", Matrix Market) with format
// detection, the dictionaries that map external string IDs to dense
// indices, the split into P user blocks × Q item blocks with a CSR matrix
// per block in both orientations, and the routing tables that say which
// factor rows of the other side each block needs and from which block.
//
// # Determinism
//
// Dense indices follow the sorted order of external IDs (numeric order when
// every ID is a decimal integer), not the order of the input, so the same
// ratings in any order or any number of shards give the same indices. Each
// CSR row lists its ratings in ascending order of the other side's index.
//
// # Concurrency
//
// [ReadFileParallel] parses on the threads it is given; [NewDataset]
// remaps, merges and transposes in ranges on GOMAXPROCS goroutines. Each
// goroutine writes only its own range of the output, so the results are
// those of one goroutine to the last bit, whatever the thread count.
//
// # Streaming
//
// [Scan] reads its input through a fixed-size buffer and hands each record
// to a callback; no whole-file string is ever built.
//
// # Shards and the distributed ingest
//
// A file stored in the cluster is indexed once ([Indexer], [FileIndex]:
// its format and the newlines of each chunk), cut into shards at line
// starts ([CutShards]) and parsed shard by shard ([ScanShard]) with true
// line numbers. An [Ingest] is one worker's part of an ingest spread over
// W workers: IDs are counted by hash owners, sorted and numbered by range
// owners, and every rating is sent to the builders of its blocks, so that
// no worker holds more than its share; the dense numbering and the blocks
// are those of [NewDataset] and [NewLayout] on the same input.
package partition
