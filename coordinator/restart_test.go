package coordinator_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cofactor-ml/cofactor/coordinator"
)

// startLoggedCluster is three coordinators without workers, all logging
// into logs at WARN and above.
func startLoggedCluster(t *testing.T, logs *syncBuffer) *cluster {
	t.Helper()
	c := startCoordinators(t, logs, slog.LevelWarn, func(*coordinator.Config) {})
	eventually(t, "three members, one leader", func() error {
		for i := range c.nodes {
			st, err := coordinator.NewClient(c.url(i)).Cluster(context.Background())
			if err != nil {
				return err
			}
			roles := map[string]int{}
			for _, s := range st.Servers {
				roles[s.State]++
			}
			if roles["leader"] != 1 || roles["follower"] != 2 {
				return fmt.Errorf("%s: %+v", c.cfgs[i].ID, st.Servers)
			}
		}
		return nil
	})
	return c
}

// TestRestartedMember: while a follower is down, the leader's failed
// heartbeats and appendEntries to it are logged at WARN, not ERROR; once
// restarted, the follower's first cluster status does not call its live
// peers unreachable.
func TestRestartedMember(t *testing.T) {
	logs := &syncBuffer{}
	c := startLoggedCluster(t, logs)
	lead := c.leader()
	down := (lead + 1) % 3
	c.stop(down)
	peerFailure := regexp.MustCompile(`failed to (heartbeat|appendEntries) to`)
	eventually(t, "the leader logs its failed calls to the stopped follower", func() error {
		if !peerFailure.MatchString(logs.String()) {
			return fmt.Errorf("nothing logged yet")
		}
		return nil
	})
	for _, line := range strings.Split(logs.String(), "\n") {
		if peerFailure.MatchString(line) && (!strings.Contains(line, "level=WARN") || strings.Contains(line, "ERROR")) {
			t.Errorf("a routine raft error is not a WARN record: %s", line)
		}
	}

	c.restart(down)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := coordinator.NewClient(c.url(down)).Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Servers) != 3 {
		t.Fatalf("the restarted member lists %+v", st.Servers)
	}
	t.Logf("the restarted member's first answer: %+v", st.Servers)
	for _, s := range st.Servers {
		if s.State == "unreachable" {
			t.Errorf("the restarted member calls live %s unreachable: %+v", s.ID, st.Servers)
		}
	}
}
