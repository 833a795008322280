// Command imaged runs the imaged image service. It only parses flags and
// wires the packages together; every rule lives in those packages.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/imaged/imaged/cli"
)

const usage = `imaged — an image service for VM disk images and container images

Usage:
  imaged serve [flags]     run the service (imaged serve -h for its flags)
  imaged migrate [flags]   migrate a database, or copy a catalog (imaged migrate -h)
  imaged metadefs load DIR import metadata definition files (imaged metadefs -h)
  imaged version           print the version
  imaged image|registry|task|audit|agents|upload|download|images ...
                           operator commands against a running imaged (docs/cli.md)

Every flag of serve can also be set with an IMAGED_* environment variable
(--data-dir = IMAGED_DATA_DIR); a flag wins over the environment.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return migrateCmd(ctx, args[1:], getenv, stdout, stderr)
	case "agent":
		return agentCmd(ctx, args[1:], getenv, stdout, stderr)
	case "metadefs":
		return metadefsCmd(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "imaged", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		if cli.IsCommand(args[0]) { // image, registry, task, audit, agents, upload, download, images
			return cli.Run(ctx, args, getenv, stdout, stderr)
		}
		fmt.Fprintf(stderr, "imaged: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
