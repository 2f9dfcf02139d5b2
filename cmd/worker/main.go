// Command worker runs a cofactor worker: it holds rating blocks, solves
// their rows and exchanges factor rows with the other workers over NATS.
package main

import (
	"os"

	"github.com/cofactor-ml/cofactor/internal/cli"
	"github.com/cofactor-ml/cofactor/internal/memtune"
)

func main() {
	memtune.Apply()
	os.Exit(cli.WorkerMain(os.Args[1:], os.Stdout, os.Stderr))
}
