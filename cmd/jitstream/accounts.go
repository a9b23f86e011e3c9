package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jitstream/jitstream/internal/auth"
	"github.com/jitstream/jitstream/internal/library"
	"github.com/jitstream/jitstream/internal/sample"
	"github.com/jitstream/jitstream/internal/server"
	"github.com/jitstream/jitstream/internal/state"
	"github.com/jitstream/jitstream/internal/store"
)

// parseAll parses flags anywhere among the arguments (flag stops at the
// first positional one) and returns the positional arguments.
func parseAll(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil // after "--": all positional
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// openAuth opens the store of c with its library and access control.
func (c *common) openAuth(ctx context.Context) (*library.Library, *auth.Auth, error) {
	lib, st, _, err := c.openLibrary(ctx)
	if err != nil {
		return nil, nil, err
	}
	au, err := auth.New(ctx, st, auth.Options{State: c.shared})
	if err != nil {
		return nil, nil, err
	}
	return lib, au, nil
}

const usersUsage = `usage: jitstream users [--store DIR] [ls [-l] [--json]]
       jitstream users add [--quota SIZE] NAME
       jitstream users rm [--yes] NAME        (deletes the user's assets and tokens too)
       jitstream users quota NAME SIZE        (e.g. 50GB, 500MiB; 0 or none: no limit)`

// cmdUsers lists, adds and removes users, and sets their quotas.
func cmdUsers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("users", stderr, &c)
	quota := fs.String("quota", "", "users add: the bytes of originals the user may store, e.g. 50GB (default: no limit)")
	yes := fs.Bool("yes", false, "users rm: really delete the user, their assets and tokens")
	long := fs.Bool("l", false, "users ls: show each user's quota and usage")
	asJSON := fs.Bool("json", false, "users ls: print JSON")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	sub := "ls"
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}
	usage := func() error { fmt.Fprintln(stderr, usersUsage); return errUsage }
	switch {
	case sub == "ls" && len(pos) == 0:
		lib, _, err := c.openAuth(ctx)
		if err != nil {
			return err
		}
		return listUsers(ctx, lib, stdout, *long, *asJSON)
	case sub == "add" && len(pos) == 1:
		var q int64
		if *quota != "" {
			if q, err = library.ParseSize(*quota); err != nil {
				return err
			}
		}
		lib, _, err := c.openAuth(ctx)
		if err != nil {
			return err
		}
		if err := lib.AddUser(ctx, pos[0]); err != nil {
			return err
		}
		if *quota != "" {
			return lib.SetQuota(ctx, pos[0], q)
		}
		return nil
	case sub == "quota" && len(pos) == 2:
		q, err := library.ParseSize(pos[1])
		if err != nil {
			return err
		}
		lib, _, err := c.openAuth(ctx)
		if err != nil {
			return err
		}
		return lib.SetQuota(ctx, pos[0], q)
	case sub == "rm" && len(pos) == 1:
		return removeUser(ctx, &c, pos[0], *yes, stdout, stderr)
	}
	return usage()
}

func listUsers(ctx context.Context, lib *library.Library, stdout io.Writer, long, asJSON bool) error {
	users, err := lib.Users(ctx)
	if err != nil {
		return err
	}
	if !long && !asJSON {
		for _, u := range users {
			fmt.Fprintln(stdout, u)
		}
		return nil
	}
	type row struct {
		Name  string `json:"name"`
		Quota int64  `json:"quota"`
		Used  int64  `json:"used"`
	}
	rows := make([]row, 0, len(users))
	for _, u := range users {
		info, err := lib.UserInfo(ctx, u)
		if err != nil {
			return err
		}
		used, err := lib.Usage(ctx, u)
		if err != nil {
			return err
		}
		rows = append(rows, row{u, info.Quota, used})
	}
	if asJSON {
		return writeJSON(stdout, map[string]any{"users": rows})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUSED\tQUOTA")
	for _, r := range rows {
		q := "none"
		if r.Quota > 0 {
			q = library.FormatSize(r.Quota)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, library.FormatSize(r.Used), q)
	}
	return tw.Flush()
}

// removeUser deletes a user: tokens first (so that nobody uses the
// account while its assets go), then the assets, then the user.
func removeUser(ctx context.Context, c *common, user string, yes bool, stdout, stderr io.Writer) error {
	lib, au, err := c.openAuth(ctx)
	if err != nil {
		return err
	}
	assets, err := lib.Assets(ctx, user)
	if err != nil {
		return err
	}
	tokens, err := au.Tokens(ctx, user)
	if err != nil {
		return err
	}
	if !yes {
		used, err := lib.Usage(ctx, user)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "jitstream users rm: this deletes user %s with %d assets (%s) and %d tokens; run again with --yes to do it\n",
			user, len(assets), library.FormatSize(used), len(tokens))
		return errUsage
	}
	if err := au.RevokeAll(ctx, user); err != nil {
		return err
	}
	if err := lib.RemoveUser(ctx, user); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed user %s (%d assets, %d tokens)\n", user, len(assets), len(tokens))
	return nil
}

const tokensUsage = `usage: jitstream tokens create --user NAME [--name LABEL] [--expires 720h]   (0: never expires)
       jitstream tokens ls --user NAME [--json]
       jitstream tokens revoke --user NAME ID`

// cmdTokens creates, lists and revokes API tokens.
func cmdTokens(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("tokens", stderr, &c)
	user := fs.String("user", "", "the token's user")
	name := fs.String("name", "", "tokens create: a label, to tell tokens apart")
	expires := fs.Duration("expires", 720*time.Hour, "tokens create: lifetime (0: never expires)")
	asJSON := fs.Bool("json", false, "tokens ls: print JSON")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if *user == "" || len(pos) == 0 {
		fmt.Fprintln(stderr, tokensUsage)
		return errUsage
	}
	lib, au, err := c.openAuth(ctx)
	if err != nil {
		return err
	}
	if err := lib.HasUser(ctx, *user); err != nil {
		return fmt.Errorf("%w (add it with: jitstream users add %s)", err, *user)
	}
	switch {
	case pos[0] == "create" && len(pos) == 1:
		if *expires < 0 {
			return fmt.Errorf("--expires %v: negative", *expires)
		}
		token, t, err := au.CreateToken(ctx, *user, *name, *expires)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token)
		fmt.Fprintf(stderr, "token %s of %s, %s; it is shown only now: keep it\n", t.ID, t.User, expiryText(t.Expires))
		return nil
	case pos[0] == "ls" && len(pos) == 1:
		ts, err := au.Tokens(ctx, *user)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]map[string]any, len(ts))
			for i, t := range ts {
				out[i] = map[string]any{"id": t.ID, "user": t.User, "name": t.Name, "created": t.Created, "expires": t.Expires}
			}
			return writeJSON(stdout, map[string]any{"tokens": out})
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tEXPIRES")
		for _, t := range ts {
			exp := "never"
			if !t.Expires.IsZero() {
				exp = t.Expires.Local().Format("2006-01-02 15:04")
				if t.Expired(time.Now()) {
					exp += " (expired)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Created.Local().Format("2006-01-02 15:04"), exp)
		}
		return tw.Flush()
	case pos[0] == "revoke" && len(pos) == 2:
		if err := au.RevokeToken(ctx, *user, pos[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (a running server stops accepting it within %v)\n", pos[1], auth.DefaultCacheTTL)
		return nil
	}
	fmt.Fprintln(stderr, tokensUsage)
	return errUsage
}

func expiryText(t time.Time) string {
	if t.IsZero() {
		return "never expires"
	}
	return "expires " + t.Local().Format(time.RFC3339)
}

const linksUsage = `usage: jitstream links create --user NAME (--asset ID | --prefix PATH) [--expires 24h] [--base URL] [--json]`

// cmdLinks makes signed playback links.
func cmdLinks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("links", stderr, &c)
	user := fs.String("user", "", "the asset's user")
	asset := fs.String("asset", "", "the asset: the link plays every format of it")
	prefix := fs.String("prefix", "", "instead of --asset: the link grants every path below this one, e.g. /files/NAME/ or /streams/NAME/ID,10-20/")
	expires := fs.Duration("expires", server.DefaultLinkTTL, "lifetime (rounded up to the hour)")
	base := fs.String("base", "", "the server's URL, for the printed link (default http://$JITSTREAM_ADDR, else http://127.0.0.1:8080)")
	asJSON := fs.Bool("json", false, "print the link's URLs for every format as JSON")
	pos, err := parseAll(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "create" || *user == "" || (*asset == "") == (*prefix == "") {
		fmt.Fprintln(stderr, linksUsage)
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
	lib, au, err := c.openAuth(ctx)
	if err != nil {
		return err
	}
	if *prefix != "" {
		if err := lib.HasUser(ctx, *user); err != nil {
			return err
		}
		l, err := au.SignLink(auth.Scope{User: *user, Prefix: *prefix}, *expires)
		if err != nil {
			return err
		}
		u := *base + l.URL(l.Prefix)
		if strings.HasSuffix(*prefix, "/") {
			u += "/"
		}
		if *asJSON {
			return writeJSON(stdout, map[string]any{"user": *user, "prefix": l.Prefix, "expires": l.Expires.Format(time.RFC3339),
				"path": l.Path(), "url": u})
		}
		fmt.Fprintln(stdout, u)
		fmt.Fprintf(stderr, "grants %s/ and below until %s\n", l.Prefix, l.Expires.Local().Format(time.RFC3339))
		return nil
	}
	a, err := lib.Asset(ctx, *user, *asset)
	if err != nil {
		return err
	}
	l, err := au.SignLink(auth.Scope{User: a.User, Asset: a.ID}, *expires)
	if err != nil {
		return err
	}
	j := server.LinkJSON(l, a)
	if *asJSON {
		j["base"] = *base
		return writeJSON(stdout, j)
	}
	fmt.Fprintln(stdout, *base+j["url"].(string))
	fmt.Fprintf(stderr, "plays every format of %s until %s (HLS: %s%s)\n", a.ID, l.Expires.Local().Format(time.RFC3339),
		*base, l.URL("/streams/"+a.User+"/"+a.ID+"/hls/master.m3u8"))
	return nil
}

// serveAuth sets up access control for serve: nil when off. The link
// secret, when the store has none yet, is made under a lock in the shared
// state sh (nodes starting together agree on one). When serve has just
// made the sample recording, it also makes a token for its user, returned
// to be shown once (see logSampleURL).
func serveAuth(ctx context.Context, st store.Store, sh state.State, on, sampleMade bool) (*auth.Auth, string, error) {
	if !on {
		return nil, "", nil
	}
	au, err := auth.New(ctx, st, auth.Options{State: sh})
	if err != nil {
		return nil, "", err
	}
	if !sampleMade {
		return au, "", nil
	}
	token, _, err := au.CreateToken(ctx, sample.User, "sample", 0)
	if err != nil {
		return nil, "", fmt.Errorf("token for the sample: %w", err)
	}
	return au, token, nil
}

// logSampleURL logs where to start: with the sample's token, the one log
// line that holds a token (through h, the handler under the redaction);
// with access control on and no sample, how to get a token.
func logSampleURL(h slog.Handler, log *slog.Logger, addr string, au *auth.Auth, token string) {
	switch {
	case token != "":
		slog.New(h).Info("sample ready: open this URL (it holds demo's token; this line is the only place it is shown)",
			"url", "http://"+addr+"/app/#token="+token)
	case au != nil:
		log.Info("access control is on: make a token with `jitstream tokens create --user NAME`, then open http://" +
			addr + "/app/ and sign in with it (or serve --auth=false)")
	}
}
