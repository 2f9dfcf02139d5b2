// Command cofactor is the operator and training CLI of cofactor.
package main

import (
	"os"

	"github.com/cofactor-ml/cofactor/cmd/cofactor/app"
	"github.com/cofactor-ml/cofactor/internal/memtune"
)

func main() {
	memtune.Apply()
	os.Exit(app.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
