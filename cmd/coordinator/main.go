// Command coordinator runs one member of cofactor's raft-replicated
// coordinator group.
package main

import (
	"os"

	"github.com/cofactor-ml/cofactor/cmd/coordinator/app"
	"github.com/cofactor-ml/cofactor/internal/memtune"
)

func main() {
	memtune.Apply()
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
