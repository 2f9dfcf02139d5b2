package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cofactor-ml/cofactor/dataset"
	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/partition"
)

// datasetOptions are the flags every dataset command shares: the NATS
// server and the credentials, nothing else (a dataset lives in the
// cluster's JetStream, which needs no coordinator).
type datasetOptions struct {
	nats string
	auth cli.NATSFlags
	json bool
}

func (o *datasetOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.nats, "nats", "", "NATS server URL of the cluster")
	o.auth.AddFlags(cmd)
	f.StringVar(&o.auth.Sec.CredsFile, "creds", "", "NATS credentials file (the same as --nats-creds)")
	f.BoolVar(&o.json, "json", false, "print one JSON object")
}

// open connects and opens the dataset bucket; done releases both.
func (o *datasetOptions) open(ctx context.Context) (*dataset.Store, func(), error) {
	if o.nats == "" {
		return nil, nil, cli.Usagef("no NATS server: pass --nats URL")
	}
	nc, err := o.auth.Dial(o.nats, "cofactor-dataset")
	if err != nil {
		return nil, nil, err
	}
	s, err := dataset.Open(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return s, nc.Close, nil
}

// datasetErr makes the caller's mistakes usage errors (exit 2): a name
// that does not exist, exists already, or is not allowed.
func datasetErr(err error) error {
	for _, target := range []error{dataset.ErrNotFound, dataset.ErrExists, dataset.ErrName} {
		if errors.Is(err, target) {
			return cli.Usage(err)
		}
	}
	return err
}

// datasetFile and datasetSummary are the JSON of the dataset commands.
type datasetFile struct {
	Name   string `json:"name"`
	Format string `json:"format"`
	Bytes  int64  `json:"bytes"`
	Chunks int    `json:"chunks"`
	SHA256 string `json:"sha256"`
}

type datasetSummary struct {
	Name       string        `json:"name"`
	Generation string        `json:"generation"`
	Created    time.Time     `json:"created"`
	Bytes      int64         `json:"bytes"`
	Files      []datasetFile `json:"files"`
	Verified   bool          `json:"verified,omitempty"`
}

func summarizeDataset(m *dataset.Manifest) datasetSummary {
	s := datasetSummary{Name: m.Name, Generation: m.Generation, Created: m.Created, Bytes: m.Bytes()}
	for _, f := range m.Files {
		s.Files = append(s.Files, datasetFile{Name: f.Name, Format: string(f.Format), Bytes: f.Size, Chunks: f.Chunks(), SHA256: f.SHA256})
	}
	return s
}

func newDatasetCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Store rating files in the cluster for jobs to ingest (put, list, info, rm)",
		Long: `A dataset is a named set of rating files kept in the cluster's JetStream
Object Store, so that jobs (job submit --dataset NAME) need no shared
filesystem: every worker ingests its shards of the dataset.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newDatasetPutCmd(s), newDatasetListCmd(s), newDatasetInfoCmd(s), newDatasetRmCmd(s))
	return cmd
}

func newDatasetPutCmd(s streams) *cobra.Command {
	var o datasetOptions
	var format string
	var replace bool
	cmd := &cobra.Command{
		Use:   "put NAME FILE... --nats URL",
		Short: "Store files as a dataset (visible once every chunk is stored)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 2 {
				return cli.Usagef("want NAME and at least one FILE; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name, paths := args[0], args[1:]
			if err := dataset.ValidName(name); err != nil {
				return cli.Usage(err)
			}
			f, err := partition.ParseFormat(format)
			if err != nil {
				return cli.Usage(err)
			}
			var srcs []dataset.Source
			var total int64
			for _, p := range paths {
				fh, err := os.Open(p)
				if err != nil {
					return err
				}
				defer fh.Close()
				if st, err := fh.Stat(); err == nil {
					total += st.Size()
				}
				srcs = append(srcs, dataset.Source{Name: filepath.Base(p), R: fh})
			}
			st, done, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			m, err := st.Put(cmd.Context(), name, srcs, dataset.PutOptions{Format: f, Replace: replace, Progress: progressLine(s.err, name, total)})
			if err != nil {
				return datasetErr(err)
			}
			if o.json {
				return cli.WriteJSON(s.out, summarizeDataset(m))
			}
			fmt.Fprintf(s.out, "dataset %s: %d file(s), %s stored (generation %s)\n", m.Name, len(m.Files), humanBytes(m.Bytes()), m.Generation)
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&format, "format", string(partition.FormatAuto), "format of every file: auto (detected per file), csv, tsv, movielens or mm")
	cmd.Flags().BoolVar(&replace, "replace", false, "replace a dataset of the same name")
	return cmd
}

// progressLine reports a put's progress on w, a line every tenth.
func progressLine(w io.Writer, name string, total int64) func(int64) {
	next := total / 10
	return func(n int64) {
		if total <= 0 || n < next {
			return
		}
		fmt.Fprintf(w, "dataset %s: %s of %s stored\n", name, humanBytes(n), humanBytes(total))
		next = n + total/10
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func newDatasetListCmd(s streams) *cobra.Command {
	var o datasetOptions
	cmd := &cobra.Command{
		Use:   "list --nats URL",
		Short: "List the datasets",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, done, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			list, err := st.List(cmd.Context())
			if err != nil {
				return err
			}
			out := struct {
				Datasets []datasetSummary `json:"datasets"`
			}{Datasets: []datasetSummary{}}
			for _, m := range list {
				out.Datasets = append(out.Datasets, summarizeDataset(m))
			}
			if o.json {
				return cli.WriteJSON(s.out, out)
			}
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFILES\tSIZE\tCREATED")
			for _, d := range out.Datasets {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", d.Name, len(d.Files), humanBytes(d.Bytes), d.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	o.addFlags(cmd)
	return cmd
}

func newDatasetInfoCmd(s streams) *cobra.Command {
	var o datasetOptions
	var verify bool
	cmd := &cobra.Command{
		Use:   "info NAME --nats URL",
		Short: "Describe a dataset (--verify: read it all and check every checksum)",
		Args:  cli.ExactlyOneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, done, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var m *dataset.Manifest
			if verify {
				m, err = st.Verify(cmd.Context(), args[0])
			} else {
				m, err = st.Info(cmd.Context(), args[0])
			}
			if err != nil {
				return datasetErr(err)
			}
			d := summarizeDataset(m)
			d.Verified = verify
			if o.json {
				return cli.WriteJSON(s.out, d)
			}
			fmt.Fprintf(s.out, "dataset %s: %s in %d file(s), generation %s, created %s\n", d.Name, humanBytes(d.Bytes), len(d.Files), d.Generation, d.Created.Format(time.RFC3339))
			tw := tabwriter.NewWriter(s.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILE\tFORMAT\tSIZE\tCHUNKS\tSHA-256")
			for _, f := range d.Files {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", f.Name, f.Format, humanBytes(f.Bytes), f.Chunks, f.SHA256)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if verify {
				fmt.Fprintln(s.out, "every chunk and file checksum verified")
			}
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&verify, "verify", false, "read every chunk and check it and each file's SHA-256")
	return cmd
}

func newDatasetRmCmd(s streams) *cobra.Command {
	var o datasetOptions
	cmd := &cobra.Command{
		Use:   "rm NAME --nats URL",
		Short: "Remove a dataset",
		Args:  cli.ExactlyOneArg("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, done, err := o.open(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := st.Remove(cmd.Context(), args[0]); err != nil {
				return datasetErr(err)
			}
			if o.json {
				return cli.WriteJSON(s.out, map[string]any{"name": args[0], "removed": true})
			}
			fmt.Fprintf(s.out, "dataset %s removed\n", args[0])
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}
