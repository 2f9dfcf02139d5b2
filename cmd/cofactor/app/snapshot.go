package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/checkpoint"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/interop"
)

// storeOptions name the snapshot store of `snapshot list` and `pull`.
//
// --store takes what checkpoint.OpenURI takes: nats://HOST:PORT (the
// JetStream buckets on that server), dir:PATH or a plain PATH (a
// directory store). The URI "nats" means the cluster's own connection,
// which a CLI does not have: it needs --nats URL, and --nats URL alone
// means --store nats.
type storeOptions struct {
	store string
	nats  string
	auth  cli.NATSFlags
}

func (o *storeOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.store, "store", "", "snapshot store: nats://HOST:PORT, dir:PATH or PATH (or nats with --nats)")
	cmd.Flags().StringVar(&o.nats, "nats", "", "NATS server URL for --store nats (alone, it implies --store nats)")
	o.auth.AddFlags(cmd)
}

// open opens the store and returns it, its name for messages and the
// function that releases it.
func (o *storeOptions) open(ctx context.Context) (*checkpoint.Repo, string, func(), error) {
	switch {
	case o.store == "" && o.nats == "":
		return nil, "", nil, cli.Usagef("no store: pass --store nats://HOST:PORT, --store dir:PATH or --nats URL")
	case o.store == "nats" && o.nats == "":
		return nil, "", nil, cli.Usagef("--store nats needs --nats URL (or pass --store nats://HOST:PORT)")
	case o.store != "" && o.store != "nats" && o.nats != "":
		return nil, "", nil, cli.Usagef("--nats goes with --store nats only, not with --store %s", o.store)
	}
	u, err := checkpoint.ParseStoreURI(o.store)
	if err != nil {
		return nil, "", nil, cli.StoreFlagError("--store", err)
	}
	name := o.store
	switch u.Kind {
	case checkpoint.StoreCluster:
		name = "nats " + o.nats
	case checkpoint.StoreDir:
		st, err := os.Stat(u.Dir)
		switch {
		case err != nil:
			return nil, "", nil, cli.Usage(fmt.Errorf("--store: %w", err))
		case !st.IsDir():
			return nil, "", nil, cli.Usagef("--store %s is not a directory", u.Dir)
		}
		name = u.Dir
	}
	r, done, err := o.auth.OpenStore(ctx, u, o.nats, "cofactor-snapshot")
	if err != nil {
		return nil, "", nil, err
	}
	return r, name, done, nil
}

func newSnapshotCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "List, pull, verify and export trained snapshots",
		Long: `A snapshot is a directory (or a store's set of files under one ID) holding a
manifest and the factor files of a trained model; train --out writes one.`,
	}
	cmd.AddCommand(newSnapshotListCmd(s), newSnapshotPullCmd(s), newSnapshotVerifyCmd(s), newSnapshotExportCmd(s))
	return cmd
}

// snapshotSummary is one snapshot in `snapshot list --json`.
type snapshotSummary struct {
	ID         string             `json:"id"`
	Model      string             `json:"model"`
	Job        string             `json:"job"`
	Iteration  int                `json:"iteration"`
	Final      bool               `json:"final"`
	Latest     bool               `json:"latest"`
	Created    time.Time          `json:"created"`
	Users      int                `json:"users"`
	Items      int                `json:"items"`
	Rank       int                `json:"rank"`
	Implicit   bool               `json:"implicit"`
	Lambda     float64            `json:"lambda"`
	Alpha      float64            `json:"alpha,omitempty"`
	UserBlocks int                `json:"user_blocks"`
	ItemBlocks int                `json:"item_blocks"`
	Files      int                `json:"files"`
	Bytes      int64              `json:"bytes"`
	Metrics    map[string]float64 `json:"metrics,omitempty"`
}

func summarize(m *checkpoint.Manifest, latest map[string]string) snapshotSummary {
	s := snapshotSummary{ID: m.ID, Model: m.Model, Job: m.Job, Iteration: m.Iteration, Final: m.Final, Latest: latest[m.Model] == m.ID,
		Created: m.Created, Users: m.Users, Items: m.Items, Rank: m.Rank, Implicit: m.Implicit, Lambda: m.Lambda, Alpha: m.Alpha,
		UserBlocks: m.UserBlocks, ItemBlocks: m.ItemBlocks, Files: len(m.Files), Metrics: m.Metrics}
	for _, f := range m.Files {
		s.Bytes += f.Bytes
	}
	return s
}

func newSnapshotListCmd(s streams) *cobra.Command {
	var o storeOptions
	var model string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [--store URI] [--model M] [--json]",
		Short: "List the snapshots in a store, oldest first, marking each model's latest",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model != "" {
				if err := checkpoint.ValidID(model); err != nil {
					return cli.Usage(fmt.Errorf("--model: %w", err))
				}
			}
			ctx := cmd.Context()
			repo, name, done, err := o.open(ctx)
			if err != nil {
				return err
			}
			defer done()
			if ds, ok := repo.Store.(checkpoint.DirStore); ok {
				if _, err := os.Stat(filepath.Join(ds.Root, checkpoint.ManifestName)); err == nil {
					return cli.Usagef("%s is a snapshot directory, not a store (try: cofactor snapshot verify %s)", ds.Root, ds.Root)
				}
			}
			list, err := repo.List(ctx, model)
			if err != nil {
				return err
			}
			var models []string
			for _, m := range list {
				models = append(models, m.Model)
			}
			if model != "" {
				models = append(models, model)
			}
			slices.Sort(models)
			latest := map[string]string{}
			for _, md := range slices.Compact(models) {
				id, err := repo.Latest(ctx, md)
				switch {
				case errors.Is(err, checkpoint.ErrNotFound):
				case err != nil:
					fmt.Fprintf(s.err, "warning: the latest pointer of model %s: %v\n", md, err)
				default:
					latest[md] = id
				}
			}
			sums := make([]snapshotSummary, 0, len(list))
			for i := range list {
				sums = append(sums, summarize(&list[i], latest))
			}
			if asJSON {
				return cli.WriteJSON(s.out, struct {
					Snapshots []snapshotSummary `json:"snapshots"`
					Latest    map[string]string `json:"latest"`
				}{sums, latest})
			}
			if len(sums) == 0 {
				fmt.Fprintf(s.out, "no snapshots in %s\n", name)
				return nil
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tMODEL\tJOB\tITERATION\tFINAL\tCREATED\tUSERS\tITEMS\tRANK\tLATEST")
			for _, m := range sums {
				mark := ""
				if m.Latest {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%s\n", m.ID, m.Model, m.Job, m.Iteration, yesNo(m.Final),
					m.Created.UTC().Format(time.RFC3339), m.Users, m.Items, m.Rank, mark)
			}
			return tw.Flush()
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&model, "model", "", "only this model's snapshots")
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object: {"snapshots": [...], "latest": {"MODEL": "ID"}}`)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newSnapshotPullCmd(s streams) *cobra.Command {
	var o storeOptions
	var out, latestOf string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pull ID --out DIR [--store URI] | pull --latest MODEL --out DIR [--store URI]",
		Short: "Copy a snapshot from a store into a snapshot directory, checking every file",
		Long: `pull copies snapshot ID (or the model's latest published one) from the store into
the directory --out, checking every file. The copy is built beside --out and
renamed into place: --out is at every moment absent, its old snapshot or the
complete new one. --out may be absent, empty or a snapshot directory.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var id string
			switch {
			case len(args) > 1:
				return cli.Usagef("unexpected argument %q", args[1])
			case len(args) == 1 && latestOf != "":
				return cli.Usagef("give a snapshot ID or --latest MODEL, not both")
			case len(args) == 1:
				id = args[0]
				if err := checkpoint.ValidID(id); err != nil {
					return cli.Usage(err)
				}
			case latestOf == "":
				return cli.Usagef("which snapshot? give its ID or --latest MODEL")
			default:
				if err := checkpoint.ValidID(latestOf); err != nil {
					return cli.Usage(fmt.Errorf("--latest: %w", err))
				}
			}
			if out == "" {
				return cli.Usagef("--out DIR is required")
			}
			if err := checkpoint.CheckTarget(out); err != nil {
				return cli.Usage(fmt.Errorf("--out: %w", err))
			}
			ctx := cmd.Context()
			repo, name, done, err := o.open(ctx)
			if err != nil {
				return err
			}
			defer done()
			if latestOf != "" {
				if id, err = repo.Latest(ctx, latestOf); errors.Is(err, checkpoint.ErrNotFound) {
					return cli.Usagef("model %s has no published snapshot in %s", latestOf, name)
				} else if err != nil {
					return err
				}
			}
			m, err := repo.Manifest(ctx, id)
			if errors.Is(err, checkpoint.ErrNotFound) {
				return cli.Usagef("no snapshot %s in %s", id, name)
			}
			if err != nil {
				return err
			}
			if err := checkpoint.CopyToDir(ctx, repo, id, out); err != nil {
				return fmt.Errorf("pulling %s: %w", id, err)
			}
			sum := summarize(m, nil)
			if asJSON {
				return cli.WriteJSON(s.out, map[string]any{"id": id, "model": m.Model, "out": out, "files": sum.Files + 1, "bytes": sum.Bytes})
			}
			fmt.Fprintf(s.out, "pulled %s (model %s, %d users × %d items, rank %d) to %s\n", id, m.Model, m.Users, m.Items, m.Rank, out)
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&out, "out", "", "snapshot directory to write (absent, empty or a snapshot directory)")
	cmd.Flags().StringVar(&latestOf, "latest", "", "pull this model's latest published snapshot instead of an ID")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// snapshotDir checks that path is a snapshot directory (a usage error
// otherwise) and opens it.
func snapshotDir(args []string) (string, *checkpoint.Repo, error) {
	switch {
	case len(args) == 0:
		return "", nil, cli.Usagef("which snapshot? give a snapshot directory")
	case len(args) > 1:
		return "", nil, cli.Usagef("unexpected argument %q", args[1])
	}
	path := args[0]
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, cli.Usage(err)
	}
	if !st.IsDir() {
		return "", nil, cli.Usagef("%s is not a snapshot directory (it is a file)", path)
	}
	if _, err := os.Stat(filepath.Join(path, checkpoint.ManifestName)); err != nil {
		return "", nil, cli.Usagef("%s is not a snapshot directory (no %s)", path, checkpoint.ManifestName)
	}
	r, _ := checkpoint.OpenDir(path)
	return path, r, nil
}

// problem is one bad file found by verify.
type problem struct {
	File  string `json:"file,omitempty"`
	Error string `json:"error"`
}

// verifyFailed is verify's error: the first problem, naming its file, and
// how many more there are.
type verifyFailed struct {
	path     string
	problems []problem
}

func (e verifyFailed) Error() string {
	msg := e.path + ": " + e.problems[0].Error
	if n := len(e.problems) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more bad files)", n)
	}
	return msg
}

func newSnapshotVerifyCmd(s streams) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify PATH [--json]",
		Short: "Check every file of a snapshot directory against its manifest and its own checksum",
		Long: `verify reads the snapshot directory PATH: its manifest, then every factor file
(size and CRC-32C against the manifest, the file's own CRC-32C, its structure
and its agreement with the manifest), then the whole model (seen-items files,
duplicate IDs). It prints "ok" and exits 0, or exits 1 with an error naming the
first bad file (--json lists them all). A PATH that is not a snapshot directory
exits 2.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, repo, err := snapshotDir(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var problems []problem
			m, err := repo.Manifest(ctx, "")
			if err != nil {
				problems = append(problems, problem{checkpoint.ManifestName, err.Error()})
			} else {
				for _, f := range m.Files {
					if f.Kind != "factors" {
						continue
					}
					if _, err := repo.ReadBlock(ctx, "", m, f.Side, f.Block); err != nil {
						problems = append(problems, problem{f.Name, err.Error()})
					}
				}
				if len(problems) == 0 {
					if _, err := repo.Open(ctx, ""); err != nil {
						file := ""
						for _, f := range m.Files {
							if strings.Contains(err.Error(), f.Name+":") {
								file = f.Name
							}
						}
						problems = append(problems, problem{file, err.Error()})
					}
				}
			}
			if len(problems) > 0 {
				if asJSON {
					if err := cli.WriteJSON(s.out, map[string]any{"ok": false, "path": path, "problems": problems}); err != nil {
						return err
					}
				}
				return verifyFailed{path, problems}
			}
			sum := summarize(m, nil)
			if asJSON {
				return cli.WriteJSON(s.out, struct {
					OK   bool   `json:"ok"`
					Path string `json:"path"`
					snapshotSummary
				}{true, path, sum})
			}
			fmt.Fprintf(s.out, "ok: %s: snapshot %s of model %s (iteration %d%s): %d users × %d items, rank %d, %d files, %s\n",
				path, m.ID, m.Model, m.Iteration, map[bool]string{true: ", final", false: ""}[m.Final],
				m.Users, m.Items, m.Rank, sum.Files+1, byteCount(sum.Bytes))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object: {"ok": true, ...} or {"ok": false, "problems": [{"file", "error"}]}`)
	return cmd
}

// byteCount formats a size for people.
func byteCount(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " bytes"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

func newSnapshotExportCmd(s streams) *cobra.Command {
	var format, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "export PATH --format npy|csv|parquet --out DIR [--json]",
		Short: "Write a snapshot's factors for NumPy (.npy) or as CSV, with the ID lists",
		Long: `export reads the snapshot directory PATH (checking every file) and writes into
the directory --out:

  npy: user_factors.npy, item_factors.npy (float32, shape rows × rank, C order)
  csv: user_factors.csv, item_factors.csv ("id,f0,f1,..." and one row per ID)
  parquet: user_factors.parquet, item_factors.parquet (columns id: string,
       factors: list<float32>; Spark, pandas, DuckDB read them)

and, for both, user_ids.txt and item_ids.txt: one external ID a line, in the
order of the rows. --out may be absent, empty or a previous export (replaced
whole); nothing partial is left there after a failure.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var export func(*checkpoint.Model, string) error
			var files []string
			switch format {
			case "npy":
				export, files = checkpoint.ExportNPY, []string{checkpoint.UserFactorsNPY, checkpoint.ItemFactorsNPY}
			case "csv":
				export, files = checkpoint.ExportCSV, []string{checkpoint.UserFactorsCSV, checkpoint.ItemFactorsCSV}
			case "parquet":
				export, files = interop.ExportParquet, []string{checkpoint.UserFactorsParquet, checkpoint.ItemFactorsParquet}
			default:
				return cli.Usagef("--format %q: want npy, csv or parquet", format)
			}
			files = append(files, checkpoint.UserIDsFile, checkpoint.ItemIDsFile)
			path, repo, err := snapshotDir(args)
			if err != nil {
				return err
			}
			if out == "" {
				return cli.Usagef("--out DIR is required")
			}
			if err := checkpoint.CheckExportTarget(out); err != nil {
				return cli.Usage(fmt.Errorf("--out: %w", err))
			}
			md, err := repo.Open(cmd.Context(), "")
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if err := export(md, out); err != nil {
				return fmt.Errorf("exporting %s: %w", path, err)
			}
			if asJSON {
				return cli.WriteJSON(s.out, map[string]any{"snapshot": md.Manifest.ID, "format": format, "out": out,
					"users": len(md.UserIDs), "items": len(md.ItemIDs), "rank": md.Rank, "files": files})
			}
			fmt.Fprintf(s.out, "exported %s (%d users × %d items, rank %d) to %s: %s\n",
				md.Manifest.ID, len(md.UserIDs), len(md.ItemIDs), md.Rank, out, strings.Join(files, ", "))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "npy", "npy, csv or parquet")
	cmd.Flags().StringVar(&out, "out", "", "directory to write (absent, empty or a previous export)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}
