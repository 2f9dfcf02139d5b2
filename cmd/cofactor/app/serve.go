package app

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/httpauth"
	"github.com/cofactor-ml/cofactor/serve"
)

// snapshotFlagHelp is --snapshot of the commands that read one snapshot.
const snapshotFlagHelp = "snapshot directory; with --store a snapshot ID or \"latest\" (the same as --store URI@ID)"

// clusterConfig asks the coordinators where the cluster's snapshots are
// (GET /v1/config), trying each URL in turn for up to the client's
// patience.
func clusterConfig(ctx context.Context, ops *opsOptions) (coordinator.ClientConfig, error) {
	c, err := ops.client()
	if err != nil {
		return coordinator.ClientConfig{}, cli.Usagef("the cluster's store needs a coordinator: pass --coordinator URL (or set %s), or --store dir:PATH|nats://HOST:PORT", EnvCoordinator)
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		return coordinator.ClientConfig{}, err
	}
	return *cfg, nil
}

// scoredJSON is one item of recommend and similar --json.
type scoredJSON struct {
	Item  string  `json:"item"`
	Score float32 `json:"score"`
}

func scoredItems(m *checkpoint.Model, sc []serve.Scored) []scoredJSON {
	out := make([]scoredJSON, len(sc))
	for j, e := range sc {
		out[j] = scoredJSON{m.ItemIDs[e.Item], e.Score}
	}
	return out
}

func printScored(w io.Writer, m *checkpoint.Model, sc []serve.Scored) {
	for j, e := range sc {
		fmt.Fprintf(w, "%4d  %-20s %.4f\n", j+1, m.ItemIDs[e.Item], e.Score)
	}
}

// recommendOptions are the flags of `recommend`.
type recommendOptions struct {
	snap        snapshotOptions
	user        string
	k           int
	excludeSeen bool
	all         bool
	out         string
	threads     int
	json        bool
	explain     bool // explain.go
	explainTop  int
}

func (o *recommendOptions) check() error {
	switch {
	case o.k < 1:
		return cli.Usagef("--k %d must be ≥ 1", o.k)
	case o.explainTop < 1:
		return cli.Usagef("--explain-top %d must be ≥ 1", o.explainTop)
	case o.explain && o.all:
		return cli.Usagef("--explain goes with --user, not --all")
	case o.threads < 0:
		return cli.Usagef("--threads %d must be ≥ 0", o.threads)
	case o.all && o.user != "":
		return cli.Usagef("--user and --all cannot be combined")
	case o.all && o.out == "":
		return cli.Usagef("--all needs --out FILE")
	case !o.all && o.out != "":
		return cli.Usagef("--out goes with --all")
	case !o.all && o.user == "":
		return cli.Usagef("no user: pass --user ID, or --all with --out FILE")
	}
	if o.all {
		if st, err := os.Stat(o.out); err == nil && st.IsDir() {
			return cli.Usagef("--out %s is a directory", o.out)
		}
		if st, err := os.Stat(filepath.Dir(o.out)); err != nil || !st.IsDir() {
			return cli.Usagef("--out %s: directory %s does not exist", o.out, filepath.Dir(o.out))
		}
	}
	return nil
}

func newRecommendCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &recommendOptions{}
	cmd := &cobra.Command{
		Use:   "recommend (--store URI[@ID] | --snapshot DIR) (--user U | --all --out FILE) [--k 10]",
		Short: "Print a user's top items, or every user's into a CSV file",
		Long: `recommend ranks items for a user of a snapshot by x_u·y_i, highest first (ties
to the item that comes first in the snapshot). --exclude-seen leaves out the
items the user trained on (a job's final snapshot holds them).

--explain recomputes the user's factors from the final item factors (one more
user half-iteration, as the implicit library's explain does) and lists, for
each item, the user's training items that contributed most to its score
(--explain-top) and the remainder; contributions plus remainder equal the
score. It needs a job's final snapshot with its training ratings.

--all ranks every user and writes user,rank,item,score rows (with a header)
to --out, through a temporary file renamed into place.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			m, id, err := o.snap.open(cmd.Context(), cmd, ops)
			if err != nil {
				return err
			}
			if o.excludeSeen && !m.HasSeen() {
				return cli.Usagef("--exclude-seen: snapshot %s holds no training items (it is not a job's final snapshot)", id)
			}
			if o.all {
				return o.writeAll(cmd.Context(), s, m)
			}
			u, ok := m.User(o.user)
			if !ok {
				return cli.Usagef("user %q is not in the snapshot", o.user)
			}
			if o.explain {
				return o.explainUser(s, m, u, id)
			}
			recs := serve.RecommendUser(m, u, o.k, serve.Filter{ExcludeSeen: o.excludeSeen})
			if o.json {
				return cli.WriteJSON(s.out, struct {
					User  string       `json:"user"`
					Items []scoredJSON `json:"items"`
				}{o.user, scoredItems(m, recs)})
			}
			fmt.Fprintf(s.out, "top %d items for user %s (snapshot %s):\n", len(recs), o.user, id)
			printScored(s.out, m, recs)
			return nil
		},
	}
	o.snap.addFlags(cmd, snapshotFlagHelp, &ops.nats, true)
	f := cmd.Flags()
	f.StringVar(&o.user, "user", "", "user ID")
	f.IntVar(&o.k, "k", 10, "number of items")
	f.BoolVar(&o.excludeSeen, "exclude-seen", false, "leave out the items the user trained on")
	f.BoolVar(&o.explain, "explain", false, "explain each item: the training items that contributed most to its score, and the remainder")
	f.IntVar(&o.explainTop, "explain-top", serve.DefaultExplainTop, "contributions listed per item with --explain")
	f.BoolVar(&o.all, "all", false, "rank every user (with --out)")
	f.StringVar(&o.out, "out", "", "CSV file of --all: user,rank,item,score")
	f.IntVar(&o.threads, "threads", 0, "goroutines of --all (default: all CPUs)")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	return cmd
}

// writeAll writes every user's top K as CSV, atomically.
func (o *recommendOptions) writeAll(ctx context.Context, s streams, m *checkpoint.Model) error {
	start := time.Now()
	var rows int64
	err := cli.WriteFileAtomic(o.out, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"user", "rank", "item", "score"}); err != nil {
			return err
		}
		rec := make([]string, 4)
		err := serve.BatchTopK(ctx, m, o.k, o.excludeSeen, o.threads, func(u int32, items []int32, scores []float32) error {
			rec[0] = m.UserIDs[u]
			for j, it := range items {
				rec[1], rec[2] = strconv.Itoa(j+1), m.ItemIDs[it]
				rec[3] = strconv.FormatFloat(float64(scores[j]), 'g', -1, 32)
				if err := cw.Write(rec); err != nil {
					return err
				}
			}
			rows += int64(len(items))
			return nil
		})
		if err != nil {
			return err
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	if o.json {
		return cli.WriteJSON(s.out, map[string]any{"out": o.out, "users": len(m.UserIDs), "k": o.k, "rows": rows, "seconds": secs})
	}
	fmt.Fprintf(s.out, "wrote %d rows (top %d of %d users) to %s in %.2f s\n", rows, o.k, len(m.UserIDs), o.out, secs)
	return nil
}

// similarOptions are the flags of `similar`.
type similarOptions struct {
	snap snapshotOptions
	item string
	k    int
	json bool
}

func newSimilarCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &similarOptions{}
	cmd := &cobra.Command{
		Use:   "similar (--store URI[@ID] | --snapshot DIR) --item I [--k 10]",
		Short: "Print the items most similar to an item",
		Long: `similar ranks items by the cosine similarity of their factor rows to the
given item's, highest first, leaving the item itself out.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.item == "":
				return cli.Usagef("no item: pass --item ID")
			case o.k < 1:
				return cli.Usagef("--k %d must be ≥ 1", o.k)
			}
			m, id, err := o.snap.open(cmd.Context(), cmd, ops)
			if err != nil {
				return err
			}
			i, ok := m.Item(o.item)
			if !ok {
				return cli.Usagef("item %q is not in the snapshot", o.item)
			}
			sims := serve.Similar(m, i, o.k)
			if o.json {
				return cli.WriteJSON(s.out, struct {
					Item  string       `json:"item"`
					Items []scoredJSON `json:"items"`
				}{o.item, scoredItems(m, sims)})
			}
			fmt.Fprintf(s.out, "%d items most similar to %s (snapshot %s):\n", len(sims), o.item, id)
			printScored(s.out, m, sims)
			return nil
		},
	}
	o.snap.addFlags(cmd, snapshotFlagHelp, &ops.nats, true)
	f := cmd.Flags()
	f.StringVar(&o.item, "item", "", "item ID")
	f.IntVar(&o.k, "k", 10, "number of items")
	f.BoolVar(&o.json, "json", false, "print the result as one JSON object")
	return cmd
}

// serveOptions are the flags of `serve`.
type serveOptions struct {
	snap     snapshotOptions
	httpAddr string
	threads  int
	maxK     int
	logs     cli.LogFlags
	http     cli.HTTPServerFlags
}

// serveAuth guards the serving API with read tokens: every route but
// /healthz (liveness probes) needs one once tokens are configured.
func serveAuth(t *httpauth.Tokens, h http.Handler) http.Handler {
	if !t.Enabled() {
		return h
	}
	guarded := t.Wrap(httpauth.Read, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		guarded.ServeHTTP(w, r)
	})
}

func newServeCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve (--store URI[@ID] | --snapshot DIR | --coordinator URL) [--http-addr HOST:PORT]",
		Short: "Answer recommendation queries over HTTP",
		Long: `serve answers GET /v1/recommend?user=U&k=10, POST /v1/recommend (one user, a
batch of users, or a new user's ratings folded in), GET /v1/similar?item=I&k=10,
GET /healthz and GET /metrics.

--store takes the store URIs of every command (docs/formats.md, "Store
URIs"): nats://HOST:PORT/MODEL, dir:PATH, PATH or nats. With a store (or
URI@latest) it follows the model's latest published snapshot: each new one is
opened, checked and swapped in without failing a request; one that fails its
checks is logged and skipped. With URI@ID (or --snapshot ID), or a snapshot
directory, it serves that one snapshot. With --coordinator alone it asks the
coordinators where the cluster's snapshots are (GET /v1/config) and follows
the model there. It serves until SIGTERM or SIGINT.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, s, ops)
		},
	}
	o.snap.addFlags(cmd, "serve this snapshot directory (with --store: this snapshot ID, or \"latest\" once) instead of following the model", &ops.nats, true)
	f := cmd.Flags()
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "host:port to serve HTTP on")
	f.IntVar(&o.threads, "threads", 0, "goroutines indexing a new snapshot (default: all CPUs)")
	f.IntVar(&o.maxK, "max-k", serve.DefaultMaxK, "largest k a request may ask for")
	o.logs.AddFlags(cmd)
	o.http.AddFlags(cmd, false)
	return cmd
}

func (o *serveOptions) run(cmd *cobra.Command, s streams, ops *opsOptions) error {
	ctx := cmd.Context()
	log, err := o.logs.Logger(s.err)
	if err != nil {
		return err
	}
	if o.threads < 0 {
		return cli.Usagef("--threads %d must be ≥ 0", o.threads)
	}
	if o.maxK < 1 {
		return cli.Usagef("--max-k %d must be ≥ 1", o.maxK)
	}
	// Protected mode before anything is opened: a refusal costs nothing.
	if err := o.http.Load(); err != nil {
		return err
	}
	tokens, err := httpauth.NewTokens(o.http.AdminTokens, o.http.ReadTokens)
	if err != nil {
		return cli.Usage(err)
	}
	if err := cli.CheckExposure(ctx, o.http.Insecure, log, o.http.Exposure("--http-addr", o.httpAddr, false)); err != nil {
		return err
	}
	target, err := o.snap.resolve(cmd)
	if err != nil {
		return err
	}
	opts := []serve.Option{serve.WithLogger(log), serve.WithMaxK(o.maxK)}
	if o.threads > 0 {
		opts = append(opts, serve.WithThreads(o.threads))
	}
	srv, err := serve.New(opts...)
	if err != nil {
		return cli.Usage(err)
	}
	// What to serve: a fixed snapshot (a directory, an ID, or --snapshot
	// latest once), or the model's latest in a store, followed.
	var follow *checkpoint.Repo
	if !target.set && (ops.coordinators != "" || os.Getenv(EnvCoordinator) != "") {
		target.uri, target.set = checkpoint.StoreURI{Kind: checkpoint.StoreCluster}, true
	}
	switch {
	case !target.set:
		return cli.Usagef("nothing to serve: pass --store URI[@ID], --snapshot DIR or --coordinator URL")
	case target.dir != "" || (target.snap != "" && target.snap != checkpoint.Latest) || target.snapFlag:
		repo, id, name, done, err := o.snap.sourceOf(ctx, target, ops, "cofactor-serve")
		if err != nil {
			return err
		}
		m, err := repo.Open(ctx, id)
		done()
		if errors.Is(err, checkpoint.ErrNotFound) {
			return cli.Usage(fmt.Errorf("%s: snapshot %s: %w", name, id, err))
		}
		if err != nil {
			return err
		}
		if id == "" {
			id = m.Manifest.ID
		}
		if err := srv.Load(m, id); err != nil {
			return err
		}
	default:
		repo, done, err := o.snap.openStore(ctx, target, ops, "cofactor-serve")
		if err != nil {
			return err
		}
		defer done()
		follow = repo
	}
	model := target.model
	if model == "" {
		model = "default"
	}

	hs, err := serve.NewHTTPServer(serveAuth(tokens, srv.Handler()), serve.DefaultHTTPConfig(), log)
	if err != nil {
		return err
	}
	ln, scheme, err := o.http.Listen(o.httpAddr)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("serving", "addr", scheme+"://"+ln.Addr().String(), "tokens", tokens.Enabled())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	followed := make(chan error, 1)
	following := follow != nil
	if following {
		log.Info("following the latest snapshot", "model", model, "store", target.name(&o.snap))
		go func() { followed <- srv.Follow(ctx, follow, model) }()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-served:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-followed:
		// Follow returns early only when it cannot watch at all.
		following = false
		runErr = fmt.Errorf("following model %s: %w", model, err)
	}
	cancel()
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil && runErr == nil {
		runErr = err
	}
	if following {
		<-followed
	}
	return runErr
}
