// Command coordinator runs one member of cofactor's raft-replicated
// coordinator group.
package main

import (
	"os"

	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/memtune"
)

func main() {
	memtune.Apply()
	os.Exit(cli.CoordinatorMain(os.Args[1:], os.Stdout, os.Stderr))
}
