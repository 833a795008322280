// Package cli is imaged's operator command line: `imaged image ...`,
// `imaged registry ...`, `imaged upload ...` and their siblings. It talks
// HTTP to a running imaged only (the native API under /api/v1 and the
// Glance API under /v2), so it works against any deployment the operator
// can reach, and it uses the standard library only.
//
// Exit codes: 0 success, 1 the server refused or the operation failed,
// 2 bad usage, 130 interrupted (Ctrl-C) while following a task.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/imaged/imaged"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// DefaultURL is the address of a local imaged serve.
const DefaultURL = "http://127.0.0.1:9292"

// Commands returns the first words Run handles; cmd/imaged dispatches
// them here.
func Commands() []string {
	return []string{"image", "registry", "task", "audit", "agents", "upload", "download", "images"}
}

// IsCommand reports whether word is one of Commands.
func IsCommand(word string) bool {
	for _, c := range Commands() {
		if c == word {
			return true
		}
	}
	return false
}

// Usage is the overview printed by `imaged <command> --help` and on a
// usage error.
const Usage = `Operator commands (they talk HTTP to a running imaged):

  imaged image list [--registry R --project P --architecture A --status alive|forgotten --customized --limit N --all]
  imaged image show ID|REF [--arch A]
  imaged image scan REF [--arch A]
  imaged image forget ID... | --ref REF [--arch A]
  imaged image restore ID...
  imaged image purge ID... [--untag]
  imaged image untag ID
  imaged image modify ID key=value... | --patch JSON
  imaged image set-limits ID slot=min:max...     (cpu=1:4 mem=1g:8g)
  imaged image clear-limits ID
  imaged image alias ALIAS ID | --ref REF [--arch A]
  imaged image dealias ALIAS
  imaged image aliases [--image ID --all]
  imaged registry list | show NAME | delete NAME
  imaged registry add NAME --registry-url U [--type T --project P... --username U --password-env VAR --insecure]
  imaged registry update NAME [--registry-url U --type T --project P... --username U --password-env VAR --verify-tls=B]
  imaged registry rescan NAME [--project P] [--follow]
  imaged task show ID [--follow]
  imaged audit [--action A --target T --user U --result R --since T|DURATION --until T --limit N --all]
  imaged agents list | show ID
  imaged agents purge|preload --agent A... --image REF[@ARCH]... [--force --noprune] [--follow]
  imaged upload FILE --name N --disk-format F [--container-format bare --visibility V]
  imaged download ID -o FILE
  imaged images [--limit N]

Connection flags (every command):
  --url URL        imaged's address (IMAGED_URL, default ` + DefaultURL + `)
  --token TOKEN    the X-Auth-Token (IMAGED_TOKEN)
  --output FORMAT  table or json (default: table on a terminal, json otherwise)
`

// Env is what a command reads from and writes to besides the network.
type Env struct {
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// HTTPClient, when set, replaces the default client (tests).
	HTTPClient *http.Client
	// Now, when set, replaces time.Now (tests).
	Now func() time.Time
}

// Run executes one operator command (args[0] is the command word) and
// returns the process exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return RunEnv(ctx, args, Env{Getenv: getenv, Stdout: stdout, Stderr: stderr})
}

// RunEnv is Run with every dependency explicit.
func RunEnv(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, Usage)
		return ExitUsage
	}
	c := &cmd{env: env, name: args[0]}
	var err error
	switch args[0] {
	case "image":
		err = c.image(ctx, args[1:])
	case "registry":
		err = c.registry(ctx, args[1:])
	case "task":
		err = c.task(ctx, args[1:])
	case "audit":
		err = c.audit(ctx, args[1:])
	case "agents":
		err = c.agents(ctx, args[1:])
	case "upload":
		err = c.upload(ctx, args[1:])
	case "download":
		err = c.download(ctx, args[1:])
	case "images":
		err = c.vmImages(ctx, args[1:])
	default:
		err = usageErrorf("unknown command %q", args[0])
	}
	return c.exit(err)
}

// usageError is a bad command line: exit 2 with the usage.
type usageError struct{ err *imaged.Error }

func (u *usageError) Error() string { return u.err.Message }
func (u *usageError) Unwrap() error { return u.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{imaged.Errorf(imaged.EINVALID, format, args...)}
}

// errHelp is -h/--help: the usage on stdout, exit 0.
var errHelp = errors.New("help requested")

// errInterrupted is Ctrl-C while following (the message is printed).
var errInterrupted = errors.New("interrupted")

// errReported is a failure whose details are already printed (bulk
// results, a failed task): exit 1 without another message.
var errReported = errors.New("failed")

// exit prints err and maps it to an exit code.
func (c *cmd) exit(err error) int {
	var ue *usageError
	var ae *APIError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errHelp):
		fmt.Fprint(c.env.Stdout, Usage)
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(c.env.Stderr, "imaged %s: %s\n\n%s", c.name, ue.Error(), Usage)
		return ExitUsage
	case errors.Is(err, errInterrupted):
		return ExitInterrupted
	case errors.Is(err, errReported):
		return ExitFailed
	case errors.As(err, &ae):
		fmt.Fprintf(c.env.Stderr, "imaged %s: %s\n", c.name, ae.Describe())
		return ExitFailed
	default:
		fmt.Fprintf(c.env.Stderr, "imaged %s: %v\n", c.name, err)
		return ExitFailed
	}
}

// cmd is one invocation: its environment and, once flags are parsed, its
// connection settings.
type cmd struct {
	env    Env
	name   string
	url    string
	token  string
	output string
	cl     *client
}

// flagSet returns a FlagSet with the connection flags registered.
func (c *cmd) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("imaged "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by exit
	fs.StringVar(&c.url, "url", firstNonEmpty(c.env.Getenv("IMAGED_URL"), DefaultURL), "imaged's address (IMAGED_URL)")
	fs.StringVar(&c.token, "token", c.env.Getenv("IMAGED_TOKEN"), "X-Auth-Token (IMAGED_TOKEN)")
	fs.StringVar(&c.output, "output", "", "table or json (default: table on a terminal)")
	return fs
}

// parse parses flags interspersed with positional arguments (Go's flag
// package stops at the first positional one) and checks the connection
// settings. want is the number of positional arguments: exact when
// variadic is false, a minimum otherwise.
func (c *cmd) parse(fs *flag.FlagSet, args []string, want int, variadic bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageErrorf("%s", err.Error())
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case !variadic && len(pos) > want:
		return nil, usageErrorf("unexpected argument %q", pos[want])
	case len(pos) < want:
		return nil, usageErrorf("missing argument: want %d, got %d", want, len(pos))
	}
	switch c.output {
	case "":
		c.output = "json"
		if isTerminal(c.env.Stdout) {
			c.output = "table"
		}
	case "table", "json":
	default:
		return nil, usageErrorf("invalid --output %q: want table or json", c.output)
	}
	u, err := url.Parse(c.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("invalid --url %q: want http(s)://host[:port]", c.url)
	}
	hc := c.env.HTTPClient
	if hc == nil {
		hc = &http.Client{CheckRedirect: keepTokenOnHost}
	}
	c.cl = &client{base: strings.TrimRight(c.url, "/"), token: c.token, http: hc}
	return pos, nil
}

// keepTokenOnHost follows redirects but drops the X-Auth-Token when one
// leads to another host (Go strips only Authorization and cookies).
func keepTokenOnHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		req.Header.Del("X-Auth-Token")
	}
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// columns is the terminal width: COLUMNS, or 80.
func (c *cmd) columns() int {
	if n, err := strconv.Atoi(c.env.Getenv("COLUMNS")); err == nil && n >= 20 {
		return n
	}
	return 80
}

// progress returns a bar on stderr, drawing only when stderr is a
// terminal.
func (c *cmd) progress(label string, unit Unit) *Progress {
	return NewProgress(c.env.Stderr, ProgressOptions{Label: label, Unit: unit, Width: c.columns(),
		Enabled: isTerminal(c.env.Stderr), Now: c.env.Now})
}

// subcommand splits "verb args..." and rejects a missing verb.
func subcommand(args []string, verbs string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usageErrorf("missing subcommand: want one of %s", verbs)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return "", nil, errHelp
	}
	return args[0], args[1:], nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
