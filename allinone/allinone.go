// Package allinone runs a whole cofactor cluster inside one process: an
// embedded NATS server (JetStream on, in-process connections only), a
// single-node raft coordinator kept in memory, and N workers. `cofactor
// train` and `quickstart` run jobs through it, so a laptop runs the same
// engine, messages and phases as a cluster.
package allinone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cofactor-ml/cofactor/coordinator"
	"github.com/cofactor-ml/cofactor/internal/job"
	"github.com/cofactor-ml/cofactor/transport/embedded"
	"github.com/cofactor-ml/cofactor/worker"
)

// Options configure an in-process cluster.
type Options struct {
	// Workers is the number of in-process workers (0: one per CPU).
	Workers int
	// Threads is each worker's row-solving goroutines (0: CPUs / workers,
	// at least 1), so that the workers together use the machine's cores.
	Threads int
	// Logger receives the components' logs (default: discarded).
	Logger *slog.Logger
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	if o.Threads <= 0 {
		o.Threads = max(runtime.NumCPU()/o.Workers, 1)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Cluster is a running in-process cluster.
type Cluster struct {
	ns      *embedded.Server
	dir     string
	node    *coordinator.Node
	workers []*worker.Worker
	conns   []*nats.Conn
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Start brings a cluster up and returns once every worker is registered.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	o = o.withDefaults()
	log := o.Logger
	c = &Cluster{}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.dir, err = os.MkdirTemp("", "cofactor-allinone-"); err != nil {
		return nil, err
	}
	if c.ns, err = embedded.Start(embedded.Options{JetStream: true, StoreDir: c.dir, NoListen: true, ServerName: "cofactor-allinone"}); err != nil {
		return nil, err
	}
	connect := func() (*nats.Conn, error) {
		nc, err := c.ns.Connect()
		if err == nil {
			c.conns = append(c.conns, nc)
		}
		return nc, err
	}
	nc, err := connect()
	if err != nil {
		return nil, err
	}
	cfg := coordinator.DefaultConfig()
	cfg.ID, cfg.InMemory = "local", true
	if c.node, err = coordinator.New(cfg, coordinator.WithConn(nc), coordinator.WithLogger(log)); err != nil {
		return nil, err
	}
	if err = c.node.Start(ctx); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for i := 0; i < o.Workers; i++ {
		wc := worker.DefaultConfig()
		wc.ID, wc.Threads = fmt.Sprintf("w%d", i+1), o.Threads
		nc, err := connect()
		if err != nil {
			return nil, err
		}
		w, err := worker.New(wc, worker.WithConn(nc), worker.WithLogger(log))
		if err != nil {
			return nil, err
		}
		c.workers = append(c.workers, w)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if err := w.Run(runCtx); err != nil {
				log.Error("worker stopped", "worker", w.ID(), "err", err)
			}
		}()
	}
	return c, c.waitWorkers(ctx, o.Workers)
}

// waitWorkers waits until n workers are registered and alive.
func (c *Cluster) waitWorkers(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if c.node.AliveWorkers() >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("all-in-one: %d workers did not register: %w", n, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Node is the coordinator.
func (c *Cluster) Node() *coordinator.Node { return c.node }

// Run submits spec, waits for it to finish and returns its result. progress,
// if not nil, is called whenever the job's state changes. A failed job is
// returned with its result and an error: a *JobError.
func (c *Cluster) Run(ctx context.Context, spec job.Spec, progress func(job.Result)) (job.Result, error) {
	id, err := c.node.Submit(ctx, coordinator.SubmitRequest{Spec: spec})
	if err != nil {
		return job.Result{}, err
	}
	for {
		changed := c.node.Changed()
		res, err := c.node.JobResult(id)
		if err != nil {
			return res, err
		}
		if job.Finished(res.State) {
			if res.State != job.StateSucceeded {
				return res, &JobError{Result: res}
			}
			return res, nil
		}
		if progress != nil {
			progress(res)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-changed:
		}
	}
}

// JobError is a job that did not succeed.
type JobError struct{ Result job.Result }

func (e *JobError) Error() string {
	if e.Result.Error != "" {
		return e.Result.Error
	}
	return "job " + e.Result.JobID + " " + e.Result.State.String()
}

// IsInput reports whether the job failed on its input (exit code 2).
func (e *JobError) IsInput() bool { return e.Result.ErrorKind == job.KindInput }

// Close stops everything and removes the cluster's temporary files.
func (c *Cluster) Close() error {
	var errs []error
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.node != nil {
		errs = append(errs, c.node.Close())
	}
	for _, nc := range c.conns {
		nc.Close()
	}
	if c.ns != nil {
		c.ns.Shutdown()
	}
	if c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}
