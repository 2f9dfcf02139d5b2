// Command worker runs a cofactor worker: it holds rating blocks, solves
// their rows and exchanges factor rows with the other workers over NATS.
package main

import (
	"os"

	"github.com/cofactor-ml/cofactor/cmd/worker/app"
	"github.com/cofactor-ml/cofactor/internal/memtune"
)

func main() {
	memtune.Apply()
	os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr))
}
