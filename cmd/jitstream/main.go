// Command jitstream is a just-in-time media origin server: it stores each
// video once, exactly as uploaded, and produces every other form of it at
// request time.
//
// Usage:
//
//	jitstream serve   [--addr 127.0.0.1:8080] [--store ./data] [--auth=true] [--burst 10s] [--pace-factor 1.1]
//	                  [--max-egress 0] [--pace-segments=false]
//	                  [--uploads STORE/.tmp-uploads] [--upload-expiry 24h] [--max-upload 0]
//	jitstream ingest  [--store ./data] --user NAME [--title T] [--json] FILE...
//	jitstream ls      [--store ./data] [--user NAME] [--json]
//	jitstream rm      [--store ./data] --user NAME ID...
//	jitstream inspect [--store ./data] --user NAME [--json] ID
//	jitstream inspect FILE...
//	jitstream users   [--store ./data] [ls [-l] | add [--quota SIZE] NAME | rm [--yes] NAME | quota NAME SIZE]
//	jitstream tokens  [--store ./data] create --user NAME [--name LABEL] [--expires 720h]
//	jitstream tokens  [--store ./data] ls --user NAME | revoke --user NAME ID
//	jitstream links   [--store ./data] create --user NAME (--asset ID | --prefix PATH) [--expires 24h]
//
// --addr and --store default to $JITSTREAM_ADDR and $JITSTREAM_STORE.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "jitstream:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `jitstream: a just-in-time media origin server

Commands:
  serve    run the HTTP server
  ingest   store files as one asset (several files = chapters of one recording)
  ls       list a user's files (or the users)
  rm       delete assets
  inspect  show an asset's (or a local file's) tracks, codecs, duration, bit rate, segments
  users    list, add or remove users, set their storage quotas
  tokens   create, list and revoke a user's API tokens
  links    make signed playback links to an asset (or a path prefix)
  gc       remove what interrupted ingests and deletes left in the store
  live     print the key and URL that an encoder pushes a live stream to

Run 'jitstream COMMAND -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"serve":   cmdServe,
		"ingest":  cmdIngest,
		"ls":      cmdLs,
		"rm":      cmdRm,
		"inspect": cmdInspect,
		"users":   cmdUsers,
		"tokens":  cmdTokens,
		"links":   cmdLinks,
		"gc":      cmdGC,
		"live":    cmdLive,
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "jitstream: unknown command %q\n\n%s", args[0], usage)
		return errUsage
	}
	return cmd(ctx, args[1:], stdout, stderr)
}
