// Command cofactor is the operator and training CLI of cofactor.
package main

import (
	"os"

	"github.com/cofactor-ml/cofactor/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
