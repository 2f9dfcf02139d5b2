// Package serve answers recommendation queries from a factor snapshot:
// top-K items for a user, items similar to an item, recommendations for a
// new user folded in from their ratings, and the HTTP server that answers
// them while following a model's newest published snapshot.
//
// # Queries
//
// The core works on a *checkpoint.Model, read-only and shared by any number
// of goroutines:
//
//   - [Recommend] and [RecommendUser] rank every item by x·y_i (plus the
//     global mean of a model with biases) and return the K best, higher score first and, among equal scores, the lower
//     item row first. A [Filter] excludes items, restricts the answer to a
//     list of items, and (for a user of the snapshot) drops the user's
//     training items.
//   - [Similar] ranks items by the cosine of their factor rows, never
//     returning the query item; [SimilarUsers] does the same for users.
//     A model with biases is compared on its factors without the bias
//     columns.
//   - [Explain] recommends from the user's row recomputed from the final
//     item factors and splits each score into the contributions of the
//     user's training ratings and a remainder (als.Explainer).
//   - [FoldIn] computes a new user's factors from their ratings: one
//     user-side ALS solve against the item factors by the training code
//     (als.Solver.UpdateBlock on a one-row block), with the snapshot's λ,
//     α and model and the Cholesky solver. Folding in a trained user's own
//     ratings gives the row one more user half-iteration would compute.
//   - [Popular] is the fallback for a user the model knows nothing about
//     (no ratings, or an ID the snapshot lacks): the items with the most
//     training ratings (Model.ItemCounts), ties to the lower row, scored
//     by their rating counts. Filters apply to it as well.
//
// An [Index] is a snapshot prepared for queries: it computes once what the
// queries would otherwise recompute (item norms for Similar, YᵀY for the
// fold-in of an implicit model). The server builds one per snapshot.
//
// # Speed
//
// A query scores items in chunks that stay in L1 and keeps a K-entry heap;
// its scratch space comes from a sync.Pool, so a query allocates only its
// result. On amd64 with AVX-512 the scoring loop is an assembly kernel
// (four item rows at a time, sixteen columns per instruction); elsewhere,
// or with COFACTOR_KERNEL=go, a four-row unrolled Go loop, which tests
// compare against the kernel. At 27,000 items of rank 64 a query reads
// 6.9 MB of item factors and takes about a quarter of a millisecond.
//
// # HTTP API
//
// [Server] serves
//
//	GET  /v1/recommend?user=U&k=10[&exclude_seen=true][&exclude=I1,I2][&restrict=I3,I4]
//	     → {"user":"U","items":[{"item":"I","score":4.7}],"snapshot":"ID"}
//	       (a user the snapshot lacks: the popular items and "fallback":"popular")
//	POST /v1/recommend  {"user":"U","k":10,...filters}        → as GET
//	                    {"users":["U1","U2"],"k":10,...}      → {"results":[...],"snapshot":"ID"}
//	                    {"ratings":[{"item":"I","rating":4.5}],"k":10,...}
//	                      → {"items":[...],"unknown_items":0,"snapshot":"ID"}
//	GET  /v1/recommend?user=U&k=10&explain=true[&explain_top=5]
//	     → items carry "contributions":[{"item","contribution"}] and "remainder"
//	GET  /v1/similar?item=I&k=10 → {"item":"I","items":[...],"snapshot":"ID"}
//	GET  /v1/similar_users?user=U&k=10 → {"user":"U","users":[{"user","score"}],"snapshot":"ID"}
//	GET  /healthz   200 once a snapshot is in service, 503 before
//	GET  /metrics   Prometheus: requests, latency and popular fallbacks by
//	                endpoint, swaps, the snapshot in service, its row counts
//	GET  /ui        an HTML page to try recommendations and similar items
//	                (GET / redirects to it)
//
// POST filters are "exclude" and "restrict" (lists of item IDs) and
// "exclude_seen" (for a fold-in, the rated items count as seen). Item IDs
// the snapshot lacks are ignored in filters (catalogues run ahead of and
// behind snapshots) and in fold-in ratings, where they are counted in
// "unknown_items"; ratings that name no known item give the popular
// fallback. Bodies are limited to 1 MiB (MaxBodyBytes, 413 beyond) and
// unknown fields are refused; k is 1..1000 (WithMaxK), 10 when not given;
// a batch holds at most MaxBatchUsers users and MaxBatchResults users × k.
// Every input error is a 400 with {"error":"what to fix"}; an item
// unknown to /v1/similar is a 404; every error status has a JSON body.
// [NewHTTPServer] bounds each connection's time ([HTTPConfig]: headers,
// whole request, answer, idle), so a slow or stalled client holds one
// goroutine for a bounded time and never delays the others.
//
// # Concurrency and snapshot swaps
//
// The snapshot in service sits behind an atomic pointer. A request loads
// it once and answers from it alone, so every answer names the snapshot
// it came from ("snapshot") and no answer mixes two; a swap ([Server.Load],
// or [Server.Follow] as a model's latest pointer moves) never fails a
// request in flight. Follow opens each new snapshot with full size and CRC
// checks before swapping; one that fails is logged and skipped, and the
// snapshot in service stays. [WithSwapHook] reports each swap and when it
// took effect.
package serve
