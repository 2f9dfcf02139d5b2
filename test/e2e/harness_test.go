// Package e2e runs cofactor as real processes — a nats-server, coordinators
// and workers built from this repository — on 127.0.0.1 with free ports,
// and drives them with the cofactor CLI, as an operator would. The
// processes are started by test/testcluster.
package e2e

import (
	"os"
	"testing"

	"github.com/cofactor-ml/cofactor/test/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }

// cluster is the harness's cluster, named as the tests knew it.
type cluster = testcluster.Cluster

func newCluster(t *testing.T, nCoord, nWorkers int) *cluster {
	t.Helper()
	return testcluster.New(t, nCoord, nWorkers)
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return testcluster.RunCLI(t, args...)
}
