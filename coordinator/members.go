package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/cofactor-ml/cofactor/transport"
)

// members is the node's raft membership: opening raft, joining the group,
// adding members and recording their addresses, and following leadership
// (raft's leadership channel) to start and stop the leader's duties.
type members struct {
	n *Node
}

// open creates the raft node and reports whether it had state.
func (m *members) open() (bool, error) {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(m.n.cfg.ID)
	rc.SnapshotThreshold = m.n.cfg.SnapshotThreshold
	level := hclog.Warn
	if m.n.cfg.InMemory {
		level = hclog.Error // a group of one: elections are not news
	}
	rc.Logger = newRaftLogger(m.n.log, level) // raftlog.go: routine peer errors at WARN
	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
		trans  raft.Transport
		addr   raft.ServerAddress
	)
	if m.n.cfg.InMemory {
		// A group of one in one process: no network to wait for, so
		// elect at once rather than after the default second.
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		rc.CommitTimeout = 5 * time.Millisecond
		store := raft.NewInmemStore()
		logs, stable, snaps = store, store, raft.NewInmemSnapshotStore()
		addr, trans = raft.NewInmemTransport(raft.ServerAddress(m.n.cfg.ID))
	} else {
		dir := filepath.Join(m.n.cfg.DataDir, "raft")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return false, err
		}
		bolt, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
		if err != nil {
			return false, fmt.Errorf("coordinator: raft store: %w", err)
		}
		m.n.closers = append(m.n.closers, bolt)
		logs, stable = bolt, bolt
		fs, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, rc.Logger)
		if err != nil {
			return false, err
		}
		snaps = fs
		adv, err := net.ResolveTCPAddr("tcp", m.n.cfg.RaftAddr)
		if err != nil {
			return false, fmt.Errorf("coordinator: raft address %q: %w", m.n.cfg.RaftAddr, err)
		}
		var tcp *raft.NetworkTransport
		if m.n.cfg.RaftTLS.Set() {
			cfg, err := RaftTLSConfig(m.n.cfg.RaftTLS)
			if err != nil {
				return false, err
			}
			stream, err := NewTLSStreamLayer(m.n.cfg.RaftAddr, adv, cfg)
			if err != nil {
				return false, fmt.Errorf("coordinator: raft transport: %w", err)
			}
			tcp = raft.NewNetworkTransportWithLogger(stream, 3, 10*time.Second, rc.Logger)
		} else {
			tcp, err = raft.NewTCPTransportWithLogger(m.n.cfg.RaftAddr, adv, 3, 10*time.Second, rc.Logger)
			if err != nil {
				return false, fmt.Errorf("coordinator: raft transport: %w", err)
			}
		}
		m.n.closers = append(m.n.closers, streamCloser{tcp})
		trans, addr = tcp, raft.ServerAddress(m.n.cfg.RaftAddr)
	}
	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return false, err
	}
	r, err := raft.NewRaft(rc, m.n.fsm, logs, stable, snaps, trans)
	if err != nil {
		return false, fmt.Errorf("coordinator: raft: %w", err)
	}
	m.n.raft, m.n.state.raft = r, r
	if (m.n.cfg.Bootstrap || m.n.cfg.InMemory) && !has {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(m.n.cfg.ID), Address: addr}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return false, fmt.Errorf("coordinator: bootstrap: %w", err)
		}
	}
	return has, nil
}

// leadership follows raft's leadership channel: it starts the leader's
// duties (lead) when this node becomes leader and stops them when it
// loses leadership or ctx ends. A follower asks the leader every few
// seconds to record its addresses when they changed (refreshSelf).
func (m *members) leadership(ctx context.Context) {
	leaderCh := m.n.raft.LeaderCh()
	refresh := time.NewTicker(2 * time.Second)
	defer refresh.Stop()
	var (
		stop  context.CancelFunc
		retry <-chan time.Time // a failed start of the duties is tried again
	)
	end := func(why string) {
		if stop != nil {
			m.n.log.Info(why)
			stop()
			stop = nil
		}
		retry = nil
	}
	defer end("stopped leading")
	for {
		select {
		case <-ctx.Done():
			return
		case leader := <-leaderCh:
			// Two trues in a row mean leadership was lost and regained
			// in between: the duties start over.
			end("lost leadership")
			if leader {
				stop = m.lead(ctx)
			}
		case <-retry:
			retry = nil
			stop = m.lead(ctx)
		case <-refresh.C:
			if stop == nil && m.isLeader() {
				// The barrier failed while this node still leads.
				retry = time.After(0)
			} else if stop == nil {
				m.refreshSelf(ctx)
			}
		}
		if stop == nil && m.isLeader() && retry == nil {
			retry = time.After(200 * time.Millisecond)
		}
	}
}

// lead starts the leader's duties and returns what stops them (and waits
// for them to end), or nil when this node cannot lead yet.
func (m *members) lead(ctx context.Context) context.CancelFunc {
	if !m.isLeader() {
		return nil
	}
	// The state machine must hold every committed entry before the
	// driver reads it.
	if err := m.n.raft.Barrier(10 * time.Second).Error(); err != nil {
		m.n.log.Warn("barrier failed", "err", err)
		return nil
	}
	m.n.log.Info("became leader")
	lctx, cancel := context.WithCancel(ctx)
	m.recordSelf(lctx)
	var duties sync.WaitGroup
	for _, duty := range []func(context.Context){m.n.monitor, m.n.retention, m.n.scheduler, newDriver(m.n).run} {
		duties.Add(1)
		go func() {
			defer duties.Done()
			duty(lctx)
		}()
	}
	return func() {
		cancel()
		duties.Wait()
	}
}

// isLeader reports whether this node is the raft leader now.
func (m *members) isLeader() bool { return m.n.raft != nil && m.n.raft.State() == raft.Leader }

// recordSelf makes sure the replicated server table has this node's
// current HTTP address, which followers use to forward writes here.
func (m *members) recordSelf(ctx context.Context) {
	me := ServerInfo{ID: m.n.cfg.ID, RaftAddr: m.n.cfg.RaftAddr, HTTPAddr: m.n.HTTPAddr()}
	var have ServerInfo
	m.n.fsm.View(func(st *State) {
		if s, ok := st.Servers[me.ID]; ok {
			have = *s
		}
	})
	if have != me {
		if err := m.n.state.propose(ctx, &serverCmd{Server: me}); err != nil {
			m.n.log.Warn("own address not recorded", "err", err)
		}
	}
}

// refreshSelf asks the leader to record this follower's addresses when the
// replicated server table has others (a restart on a new HTTP port), so
// that forwarding and cluster status find it.
func (m *members) refreshSelf(ctx context.Context) {
	me := ServerInfo{ID: m.n.cfg.ID, RaftAddr: m.n.cfg.RaftAddr, HTTPAddr: m.n.HTTPAddr()}
	if me.HTTPAddr == "" || m.n.cfg.InMemory {
		return
	}
	var have *ServerInfo
	m.n.fsm.View(func(st *State) {
		if s, ok := st.Servers[me.ID]; ok {
			cp := *s
			have = &cp
		}
	})
	leader := m.leaderHTTP()
	if have == nil || *have == me || leader == "" {
		return // not a member yet (join handles that), up to date, or no leader
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c := m.n.peerClient(leader)
	c.Patience = 0
	if err := c.Join(cctx, me); err != nil {
		m.n.log.Debug("address refresh not done", "err", err)
	}
}

// join asks the member at cfg.Join to add this node, until it succeeds.
func (m *members) join(ctx context.Context) {
	c := m.n.peerClient(m.n.cfg.Join)
	me := ServerInfo{ID: m.n.cfg.ID, RaftAddr: m.n.cfg.RaftAddr, HTTPAddr: m.n.HTTPAddr()}
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := c.Join(ctx, me)
		if err == nil {
			m.n.log.Info("joined the cluster", "via", m.n.cfg.Join)
			return
		}
		m.n.log.Info("join not done yet", "via", m.n.cfg.Join, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// addServer adds a voter (leader only) and records its addresses.
func (m *members) addServer(ctx context.Context, s ServerInfo) error {
	if err := transport.ValidID(s.ID); err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	if _, err := net.ResolveTCPAddr("tcp", s.RaftAddr); err != nil {
		return fmt.Errorf("%w: raft address %q: %v", errBadRequest, s.RaftAddr, err)
	}
	f := m.n.raft.AddVoter(raft.ServerID(s.ID), raft.ServerAddress(s.RaftAddr), 0, 10*time.Second)
	if err := f.Error(); err != nil {
		return err
	}
	return m.n.state.propose(ctx, &serverCmd{Server: s})
}

// leaderHTTP is the leader's HTTP address, from the replicated server table.
func (m *members) leaderHTTP() string {
	_, id := m.n.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	var addr string
	m.n.fsm.View(func(st *State) {
		if s, ok := st.Servers[string(id)]; ok {
			addr = s.HTTPAddr
		}
	})
	return addr
}

// streamCloser closes a raft TCP transport and its pooled connections.
type streamCloser struct{ t *raft.NetworkTransport }

func (s streamCloser) Close() error {
	s.t.CloseStreams()
	return s.t.Close()
}
