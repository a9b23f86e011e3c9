// Package app holds the files of jitstream's web app, embedded in the
// binary and served at /app/ by internal/webapp: index.html, the
// stylesheet, the ES modules under js/ and the pinned player libraries
// under vendor/ (see vendor/README.md). There is no build step: the files
// are served as they are here.
package app

import (
	"embed"
	"io/fs"
)

//go:embed index.html app.css icon.svg js vendor
var files embed.FS

// Files is the web app's file tree, rooted at the app (index.html at its
// top).
func Files() fs.FS { return files }
