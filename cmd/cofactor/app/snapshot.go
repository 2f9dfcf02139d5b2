package app

import (
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

func newSnapshotCmd(s streams, ops *opsOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "List, show, pull, verify and export trained snapshots",
		Long: `A snapshot is a directory (or a store's set of files under one ID) holding a
manifest and the factor files of a trained model; train --out writes one.

Every subcommand names a store the same way (docs/formats.md, "Store URIs"):
--store nats://HOST:PORT[/MODEL], --store dir:PATH or a plain PATH, or
--store nats with --nats URL (or --coordinator) for the cluster's own; a
trailing @ID or @latest picks one snapshot (latest by default).`,
	}
	cmd.AddCommand(newSnapshotListCmd(s, ops), newSnapshotShowCmd(s, ops), newSnapshotPullCmd(s, ops), newSnapshotVerifyCmd(s, ops), newSnapshotExportCmd(s, ops))
	return cmd
}

// noStore is the usage error of a snapshot command given no store.
func noStore() error {
	return cli.Usagef("no store: pass --store nats://HOST:PORT[/MODEL], --store dir:PATH or --nats URL")
}

// snapshotArg opens the snapshot of verify, show and export: the
// snapshot directory PATH (or a store URI in its place), or what the store
// flags name. done releases what was opened.
func (o *snapshotOptions) snapshotArg(cmd *cobra.Command, args []string, ops *opsOptions) (name string, repo *checkpoint.Repo, id string, done func(), err error) {
	switch {
	case len(args) > 1:
		return "", nil, "", nil, cli.Usagef("unexpected argument %q", args[1])
	case len(args) == 1 && (o.store != "" || o.nats != "" || o.snapshot != ""):
		return "", nil, "", nil, cli.Usagef("give a snapshot directory or --store URI[@ID], not both")
	case len(args) == 1 && !looksLikeStoreURI(args[0]):
		path, repo, err := snapshotDir(args[0])
		return path, repo, "", func() {}, err
	case len(args) == 1:
		o.store = args[0]
	case o.store == "" && o.nats == "" && o.snapshot == "":
		return "", nil, "", nil, cli.Usagef("which snapshot? give a snapshot directory, or --store URI[@ID]")
	}
	repo, id, name, done, err = o.source(cmd.Context(), cmd, ops, "cofactor-snapshot")
	if err != nil {
		return "", nil, "", nil, err
	}
	if id != "" {
		name += "@" + id
	}
	return name, repo, id, done, nil
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

func newSnapshotListCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &snapshotOptions{listing: true}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --store URI [--model M] [--json]",
		Short: "List the snapshots in a store, oldest first, marking each model's latest",
		Long: `list prints the snapshots of the store --store names (nats://HOST:PORT[/MODEL],
dir:PATH, PATH, or nats with --nats URL or --coordinator). A nats:// URI's
/MODEL, like --model, lists that model's snapshots only.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := o.resolve(cmd)
			switch {
			case err != nil:
				return err
			case !t.set:
				return noStore()
			case t.snap != "":
				return cli.Usagef("--store %s names a snapshot (@%s); list takes a store (try: cofactor snapshot show --store %s)", o.store, t.snap, o.store)
			case t.dir != "":
				return cli.Usagef("%s is a snapshot directory, not a store (try: cofactor snapshot verify %s)", t.dir, t.dir)
			}
			model, name := t.model, t.name(o)
			ctx := cmd.Context()
			repo, done, err := o.openStore(ctx, t, ops, "cofactor-snapshot")
			if err != nil {
				return err
			}
			defer done()
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
	o.addFlags(cmd, "", &cli.NATSFlags{}, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object: {"snapshots": [...], "latest": {"MODEL": "ID"}}`)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newSnapshotPullCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &snapshotOptions{}
	var out, latestOf string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pull [ID] --out DIR --store URI[@ID] | pull --latest MODEL --out DIR --store URI",
		Short: "Copy a snapshot from a store into a snapshot directory, checking every file",
		Long: `pull copies snapshot ID (URI@ID, or the ID argument) or the model's latest
published one (the default, or --latest MODEL) from the store into the
directory --out, checking every file. The copy is built beside --out and
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
			case latestOf != "":
				if err := checkpoint.ValidID(latestOf); err != nil {
					return cli.Usage(fmt.Errorf("--latest: %w", err))
				}
			}
			t, err := o.resolve(cmd)
			switch {
			case err != nil:
				return err
			case !t.set:
				return noStore()
			case id != "" && t.snap != "" && t.snap != id:
				return cli.Usagef("snapshot %s and --store %s name different snapshots", id, o.store)
			case id != "":
				t.snap = id
			case latestOf != "":
				if t.snap != "" && t.snap != checkpoint.Latest {
					return cli.Usagef("give --latest MODEL or --store URI@ID, not both")
				}
				t.model, t.snap = latestOf, checkpoint.Latest
			}
			if out == "" {
				return cli.Usagef("--out DIR is required")
			}
			if err := checkpoint.CheckTarget(out); err != nil {
				return cli.Usage(fmt.Errorf("--out: %w", err))
			}
			ctx := cmd.Context()
			repo, id, name, done, err := o.sourceOf(ctx, t, ops, "cofactor-snapshot")
			if err != nil {
				return err
			}
			defer done()
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
				return cli.WriteJSON(s.out, map[string]any{"id": m.ID, "model": m.Model, "out": out, "files": sum.Files + 1, "bytes": sum.Bytes})
			}
			fmt.Fprintf(s.out, "pulled %s (model %s, %d users × %d items, rank %d) to %s\n", m.ID, m.Model, m.Users, m.Items, m.Rank, out)
			return nil
		},
	}
	o.addFlags(cmd, snapshotFlagHelp, &cli.NATSFlags{}, true)
	cmd.Flags().StringVar(&out, "out", "", "snapshot directory to write (absent, empty or a snapshot directory)")
	cmd.Flags().StringVar(&latestOf, "latest", "", "pull this model's latest published snapshot instead of an ID")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// snapshotDir checks that path is a snapshot directory (a usage error
// otherwise) and opens it.
func snapshotDir(path string) (string, *checkpoint.Repo, error) {
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

func newSnapshotVerifyCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &snapshotOptions{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify (PATH | --store URI[@ID]) [--json]",
		Short: "Check every file of a snapshot directory against its manifest and its own checksum",
		Long: `verify reads the snapshot directory PATH: its manifest, then every factor file
(size and CRC-32C against the manifest, the file's own CRC-32C, its structure
and its agreement with the manifest), then the whole model (seen-items files,
duplicate IDs). It prints "ok" and exits 0, or exits 1 with an error naming the
first bad file (--json lists them all). A PATH that is not a snapshot directory
exits 2. With --store URI[@ID] (or a store URI in place of PATH) it checks that
snapshot of the store, the model's latest by default.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, repo, id, done, err := o.snapshotArg(cmd, args, ops)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			var problems []problem
			m, err := repo.Manifest(ctx, id)
			if err != nil {
				problems = append(problems, problem{checkpoint.ManifestName, err.Error()})
			} else {
				for _, f := range m.Files {
					if f.Kind != "factors" {
						continue
					}
					if _, err := repo.ReadBlock(ctx, id, m, f.Side, f.Block); err != nil {
						problems = append(problems, problem{f.Name, err.Error()})
					}
				}
				if len(problems) == 0 {
					if _, err := repo.Open(ctx, id); err != nil {
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
	o.addFlags(cmd, snapshotFlagHelp, &cli.NATSFlags{}, true)
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

func newSnapshotExportCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &snapshotOptions{}
	var format, out string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "export (PATH | --store URI[@ID]) --format npy|csv|parquet --out DIR [--json]",
		Short: "Write a snapshot's factors for NumPy (.npy) or as CSV, with the ID lists",
		Long: `export reads the snapshot directory PATH (checking every file) and writes into
the directory --out:

  npy: user_factors.npy, item_factors.npy (float32, shape rows × rank, C order)
  csv: user_factors.csv, item_factors.csv ("id,f0,f1,..." and one row per ID)
  parquet: user_factors.parquet, item_factors.parquet (columns id: string,
       factors: list<float32>; Spark, pandas, DuckDB read them)

and, for both, user_ids.txt and item_ids.txt: one external ID a line, in the
order of the rows. --out may be absent, empty or a previous export (replaced
whole); nothing partial is left there after a failure. With --store URI[@ID]
(or a store URI in place of PATH) it exports that snapshot of the store, the
model's latest by default.`,
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
			if out == "" && len(args) <= 1 && (len(args) == 1 || o.store != "" || o.nats != "" || o.snapshot != "") {
				return cli.Usagef("--out DIR is required")
			}
			path, repo, id, done, err := o.snapshotArg(cmd, args, ops)
			if err != nil {
				return err
			}
			defer done()
			if out == "" {
				return cli.Usagef("--out DIR is required")
			}
			if err := checkpoint.CheckExportTarget(out); err != nil {
				return cli.Usage(fmt.Errorf("--out: %w", err))
			}
			md, err := repo.Open(cmd.Context(), id)
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
	o.addFlags(cmd, snapshotFlagHelp, &cli.NATSFlags{}, true)
	return cmd
}

func newSnapshotShowCmd(s streams, ops *opsOptions) *cobra.Command {
	o := &snapshotOptions{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show (PATH | --store URI[@ID]) [--json]",
		Short: "Describe one snapshot: model, job, iteration, shape, size, creation time and metrics",
		Long: `show reads one snapshot's manifest: the snapshot directory PATH, or the
snapshot of a store that --store URI[@ID] names (the model's latest by
default; a store URI may stand in place of PATH). It does not check the factor
files (verify does).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, repo, id, done, err := o.snapshotArg(cmd, args, ops)
			if err != nil {
				return err
			}
			defer done()
			ctx := cmd.Context()
			m, err := repo.Manifest(ctx, id)
			if errors.Is(err, checkpoint.ErrNotFound) {
				return cli.Usage(fmt.Errorf("%s: %w", path, err))
			}
			if err != nil {
				return err
			}
			latest := map[string]string{}
			if id != "" {
				if l, err := repo.Latest(ctx, m.Model); err == nil {
					latest[m.Model] = l
				}
			}
			sum := summarize(m, latest)
			if asJSON {
				return cli.WriteJSON(s.out, struct {
					Source string `json:"source"`
					snapshotSummary
				}{path, sum})
			}
			fmt.Fprintf(s.out, "snapshot %s of model %s (job %s, iteration %d%s%s)\n", m.ID, m.Model, m.Job, m.Iteration,
				map[bool]string{true: ", final", false: ""}[m.Final], map[bool]string{true: ", the model's latest", false: ""}[sum.Latest])
			fmt.Fprintf(s.out, "source:  %s\ncreated: %s\nshape:   %d users × %d items, rank %d, lambda %g\nfiles:   %d, %s\n",
				path, m.Created.UTC().Format(time.RFC3339), m.Users, m.Items, m.Rank, m.Lambda, sum.Files+1, byteCount(sum.Bytes))
			names := make([]string, 0, len(m.Metrics))
			for k := range m.Metrics {
				names = append(names, k)
			}
			slices.Sort(names)
			for _, k := range names {
				fmt.Fprintf(s.out, "%s: %g\n", k, m.Metrics[k])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object: the manifest's summary and its source")
	o.addFlags(cmd, snapshotFlagHelp, &cli.NATSFlags{}, true)
	return cmd
}
