package library

import "errors"

// MaxChapters is the most chapters (files) one asset may have. Ingest
// refuses the next one, before storing any of it, with an error wrapping
// ErrTooManyChapters.
const MaxChapters = 256

// ErrTooManyChapters is returned (wrapped) by Ingest for an upload of more
// than MaxChapters files.
var ErrTooManyChapters = errors.New("too many chapters")
