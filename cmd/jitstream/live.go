package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/live"
)

const liveUsage = `usage: jitstream live [--store DIR] key --user USER --name NAME [--base URL] [--json]

Prints the stream key of USER's live stream NAME and the URL an encoder
pushes it to, e.g. with ffmpeg:

  ffmpeg -re -i INPUT -c:v libx264 -g 60 -c:a aac \
    -f dash -method PUT -seg_duration 2 -use_timeline 1 -use_template 1 URL

The key derives from the deployment's secret: it stays valid until the
secret changes. Each stream pushed with it becomes an asset NAME (NAME-2,
NAME-3... for the next ones) when it ends.`

// cmdLive prints stream keys.
func cmdLive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("live", stderr, &c)
	user := fs.String("user", "", "the user the stream's assets belong to")
	name := fs.String("name", "", "the stream's name (letters, digits, '_' and '-')")
	base := fs.String("base", "", "the server's URL, for the printed URL (default http://$JITSTREAM_ADDR, else http://127.0.0.1:8080)")
	asJSON := fs.Bool("json", false, "print the key and the URL as JSON")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "key" || *user == "" || *name == "" {
		fmt.Fprintln(stderr, liveUsage)
		return errUsage
	}
	if err := live.CheckName(*name); err != nil {
		fmt.Fprintln(stderr, "jitstream live:", err)
		return errUsage
	}
	if *base == "" {
		addr := os.Getenv("JITSTREAM_ADDR")
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		*base = "http://" + addr
	}
	*base = strings.TrimSuffix(*base, "/")
	lib, st, _, err := c.openLibrary(ctx)
	if err != nil {
		return err
	}
	if err := lib.HasUser(ctx, *user); err != nil {
		return err
	}
	secret, err := auth.LoadSecret(ctx, st, c.shared)
	if err != nil {
		return err
	}
	key := live.Key(secret, *user, *name)
	url := *base + "/live/" + *user + "/" + key + "/stream.mpd"
	if *asJSON {
		b, _ := json.MarshalIndent(map[string]string{"user": *user, "name": *name, "key": key, "url": url}, "", "  ")
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	fmt.Fprintln(stdout, "key:", key)
	fmt.Fprintln(stdout, "url:", url)
	return nil
}
