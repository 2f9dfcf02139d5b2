package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/job"
)

// snapshotOptions are the flags that name a snapshot store and one
// snapshot in it, the same in every command that reads one (snapshot
// list|show|pull|verify|export, recommend, similar, similar-users,
// evaluate, serve). docs/formats.md ("Store URIs") is their manual:
//
//	--store URI[@SNAPSHOT]   nats://HOST:PORT[/MODEL], tls://…, dir:PATH,
//	                         PATH, or nats (the cluster's store); without
//	                         @SNAPSHOT a reader takes the model's latest
//	--snapshot DIR|ID|latest a snapshot directory; with --store the older
//	                         spelling of @SNAPSHOT; a store URI works too
//	--model M                the model of "latest" (a nats:// URI's /MODEL
//	                         names it as well)
//	--nats URL               the NATS server of --store nats (alone, it
//	                         means --store nats); without it the cluster's
//	                         store is found through --coordinator
//
// Every form goes through checkpoint.ParseStoreURI and is opened with
// cli.NATSFlags.OpenStore (the --nats-* and --creds flags).
type snapshotOptions struct {
	snapshot, store, model, nats string
	sec                          *cli.NATSFlags
	// listing: --model filters and defaults to every model.
	listing bool
}

// addFlags registers the store flags; snapshotHelp "" leaves out
// --snapshot (snapshot list). The NATS credentials are sec's flags, which
// the command registers itself (ops.nats.AddFlags) or addFlags does when
// own is set.
func (o *snapshotOptions) addFlags(cmd *cobra.Command, snapshotHelp string, sec *cli.NATSFlags, own bool) {
	o.sec = sec
	f := cmd.Flags()
	if snapshotHelp != "" {
		f.StringVar(&o.snapshot, "snapshot", "", snapshotHelp)
	}
	f.StringVar(&o.store, "store", "", "snapshot store URI[@SNAPSHOT]: nats://HOST:PORT[/MODEL], dir:PATH, PATH, or nats (the cluster's); @ID or @latest (default) picks the snapshot")
	defModel, modelHelp := "default", "model whose latest snapshot \"latest\" names"
	if o.listing {
		defModel, modelHelp = "", "only this model's snapshots"
	}
	f.StringVar(&o.model, "model", defModel, modelHelp)
	f.StringVar(&o.nats, "nats", "", "NATS server URL of --store nats (alone, it implies --store nats; default: asked of --coordinator)")
	if own {
		sec.AddFlags(cmd)
	}
	if f.Lookup("creds") == nil {
		f.StringVar(&sec.Sec.CredsFile, "creds", "", "NATS credentials file (the same as --nats-creds)")
	}
}

// storeTarget is what the store flags name: a snapshot directory, or a
// store with a model and a snapshot selector.
type storeTarget struct {
	// dir is a snapshot directory ("" when a store is named).
	dir string
	// uri is the store, without its selector; set is false when neither a
	// store nor a directory was named.
	uri checkpoint.StoreURI
	set bool
	// model is the model whose latest "latest" names.
	model string
	// snap is the snapshot selector: an ID, "latest", or "" for none
	// given (readers take the latest; serve follows it).
	snap string
	// snapFlag: snap came from --snapshot (serve loads "latest" once).
	snapFlag bool
}

// name is how messages name the target.
func (t storeTarget) name(o *snapshotOptions) string {
	switch {
	case t.dir != "":
		return t.dir
	case t.uri.Kind == checkpoint.StoreDir:
		return t.uri.Dir
	case t.uri.Kind == checkpoint.StoreCluster && o.nats != "":
		return "nats " + o.nats
	case t.uri.Kind == checkpoint.StoreCluster:
		return "the cluster's store"
	}
	return t.uri.String()
}

// looksLikeStoreURI: s is written as a store URI rather than a path.
func looksLikeStoreURI(s string) bool {
	return s == "nats" || strings.HasPrefix(s, "nats@") || strings.HasPrefix(s, "@") ||
		strings.HasPrefix(s, "dir:") || strings.Contains(s, "://")
}

// isSnapshotDir: dir holds a snapshot's manifest.
func isSnapshotDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, checkpoint.ManifestName))
	return err == nil
}

// resolve reads the flags (cmd tells which were given).
func (o *snapshotOptions) resolve(cmd *cobra.Command) (storeTarget, error) {
	store, snapFlag := o.store, o.snapshot
	if store == "" && snapFlag != "" {
		st, err := os.Stat(snapFlag)
		switch {
		case err == nil && st.IsDir():
			store, snapFlag = snapFlag, "" // a snapshot directory, or a directory store
		case looksLikeStoreURI(snapFlag):
			store, snapFlag = snapFlag, ""
		default:
			return storeTarget{}, cli.Usagef("--snapshot %s: not a snapshot directory (to name a snapshot in a store: --store URI@ID, or --store URI --snapshot ID)", o.snapshot)
		}
	}
	if store == "" && o.nats != "" {
		store = "nats"
	}
	t := storeTarget{model: o.model}
	if store == "" {
		if snapFlag != "" {
			return t, cli.Usagef("--snapshot %s needs --store URI (or give --store URI@%s)", snapFlag, snapFlag)
		}
		return t, nil
	}
	u, err := checkpoint.ParseStoreURI(store)
	if err != nil {
		return t, cli.StoreFlagError("--store", err)
	}
	t.uri, t.set, t.snap = u.Store(), true, u.Snapshot
	if snapFlag != "" {
		if t.snap != "" && t.snap != snapFlag {
			return t, cli.Usagef("--store %s and --snapshot %s name different snapshots", store, snapFlag)
		}
		if err := checkpoint.ValidID(snapFlag); err != nil {
			return t, cli.Usage(fmt.Errorf("--snapshot: %w", err))
		}
		t.snap, t.snapFlag = snapFlag, true
	}
	if u.Model != "" {
		if cmd.Flags().Changed("model") && o.model != u.Model {
			return t, cli.Usagef("--model %s and --store %s name different models", o.model, store)
		}
		t.model = u.Model
	}
	if t.model != "" {
		if err := checkpoint.ValidID(t.model); err != nil {
			return t, cli.Usage(fmt.Errorf("--model: %w", err))
		}
	}
	if o.nats != "" && u.Kind != checkpoint.StoreCluster {
		return t, cli.Usagef("--nats goes with --store nats only, not with --store %s", store)
	}
	if u.Kind == checkpoint.StoreDir {
		st, err := os.Stat(u.Dir)
		switch {
		case err != nil:
			return t, cli.Usage(fmt.Errorf("--store: %w", err))
		case !st.IsDir():
			return t, cli.Usagef("--store %s is not a directory", u.Dir)
		case isSnapshotDir(u.Dir):
			t.dir = u.Dir
		}
	}
	return t, nil
}

// openStore opens the target's store as NATS client name. The cluster's
// store is on --nats, or where the coordinators say (GET /v1/config).
// done releases it.
func (o *snapshotOptions) openStore(ctx context.Context, t storeTarget, ops *opsOptions, name string) (*checkpoint.Repo, func(), error) {
	if t.uri.Kind != checkpoint.StoreCluster {
		return o.sec.OpenStore(ctx, t.uri, "", name)
	}
	if o.nats != "" {
		return o.sec.OpenStore(ctx, t.uri, o.nats, name)
	}
	if ops == nil || (ops.coordinators == "" && os.Getenv(EnvCoordinator) == "") {
		return nil, nil, cli.Usagef("--store nats needs --nats URL or --coordinator URL (or pass --store nats://HOST:PORT)")
	}
	cfg, err := clusterConfig(ctx, ops)
	if err != nil {
		return nil, nil, err
	}
	if cu, err := checkpoint.ParseStoreURI(cfg.Store); err == nil && cu.Kind != checkpoint.StoreCluster {
		// The cluster keeps its snapshots somewhere other than its NATS.
		return o.sec.OpenStore(ctx, cu, "", name)
	}
	if cfg.NATSURL == "" {
		return nil, nil, errors.New("the coordinator's /v1/config names no NATS server")
	}
	return o.sec.OpenStore(ctx, t.uri, cfg.NATSURL, name)
}

// pick returns the ID the target's selector names in repo: its latest
// for "" and "latest".
func (o *snapshotOptions) pick(ctx context.Context, t storeTarget, repo *checkpoint.Repo) (string, error) {
	if t.snap != "" && t.snap != checkpoint.Latest {
		return t.snap, nil
	}
	model := t.model
	if model == "" {
		model = "default"
	}
	id, err := repo.Latest(ctx, model)
	if errors.Is(err, checkpoint.ErrNotFound) {
		return "", cli.Usagef("model %s has no published snapshot in %s", model, t.name(o))
	}
	return id, err
}

// source opens the snapshot the flags name: its repository, its ID there
// ("" for a snapshot directory) and a name for messages. done releases
// the repository.
func (o *snapshotOptions) source(ctx context.Context, cmd *cobra.Command, ops *opsOptions, client string) (repo *checkpoint.Repo, id, name string, done func(), err error) {
	t, err := o.resolve(cmd)
	if err != nil {
		return nil, "", "", nil, err
	}
	return o.sourceOf(ctx, t, ops, client)
}

func (o *snapshotOptions) sourceOf(ctx context.Context, t storeTarget, ops *opsOptions, client string) (repo *checkpoint.Repo, id, name string, done func(), err error) {
	switch {
	case t.dir != "":
		r, id := checkpoint.OpenDir(t.dir)
		if t.snap != "" && t.snap != checkpoint.Latest {
			if m, err := r.Manifest(ctx, id); err == nil && m.ID != t.snap {
				return nil, "", "", nil, cli.Usagef("%s is snapshot %s, not %s", t.dir, m.ID, t.snap)
			}
		}
		return r, id, t.dir, func() {}, nil
	case !t.set:
		return nil, "", "", nil, cli.Usagef("no snapshot: pass --store URI[@ID] (nats://HOST:PORT/MODEL, dir:PATH) or --snapshot DIR")
	}
	repo, done, err = o.openStore(ctx, t, ops, client)
	if err != nil {
		return nil, "", "", nil, err
	}
	if id, err = o.pick(ctx, t, repo); err != nil {
		done()
		return nil, "", "", nil, err
	}
	return repo, id, t.name(o), done, nil
}

// open reads the snapshot the flags name and returns it with its ID.
func (o *snapshotOptions) open(ctx context.Context, cmd *cobra.Command, ops *opsOptions) (*checkpoint.Model, string, error) {
	repo, id, name, done, err := o.source(ctx, cmd, ops, "cofactor-snapshot")
	if err != nil {
		return nil, "", err
	}
	defer done()
	m, err := repo.Open(ctx, id)
	if errors.Is(err, checkpoint.ErrNotFound) {
		if id == "" {
			return nil, "", cli.Usage(fmt.Errorf("%s: %w", name, err))
		}
		return nil, "", cli.Usage(fmt.Errorf("no snapshot %s in %s: %w", id, name, err))
	}
	if err != nil {
		return nil, "", err
	}
	if id == "" {
		id = m.Manifest.ID
	}
	return m, id, nil
}

// trainingStore reads the training flags' --store (train, job submit,
// schedule add) the way the snapshot commands read it: a nats:// URI's
// /MODEL names the model, a bare path is a directory, and a snapshot
// selector is refused (training writes new snapshots). --out, a snapshot
// directory, may be written dir:PATH too.
func trainingStore(cmd *cobra.Command, sp *job.Spec) error {
	if out, ok := strings.CutPrefix(sp.Out, "dir:"); ok {
		sp.Out = out
	} else if strings.Contains(sp.Out, "://") {
		return cli.Usagef("--out %s: --out is a snapshot directory; to write to a NATS store pass --store %s", sp.Out, sp.Out)
	}
	if sp.Store == "" {
		return nil
	}
	u, err := checkpoint.ParseStoreURI(sp.Store)
	if err != nil {
		return cli.StoreFlagError("--store", err)
	}
	if u.Snapshot != "" {
		return cli.Usagef("--store %s names a snapshot (@%s): training writes new snapshots to a store, pass it without @", sp.Store, u.Snapshot)
	}
	if u.Model != "" {
		if cmd.Flags().Changed("model") && sp.Model != u.Model {
			return cli.Usagef("--model %s and --store %s name different models", sp.Model, sp.Store)
		}
		sp.Model = u.Model
	}
	if u.Bare && !strings.Contains(u.Dir, ":") {
		sp.Store = "dir:" + u.Dir // the spec wants dir: spelt out
	}
	return nil
}
