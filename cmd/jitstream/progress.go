package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a bar on stderr while large files are read.
type progress struct {
	w     io.Writer
	total int64
	n     int64
	on    bool
	last  time.Time
	start time.Time
}

const progressMin = 16 << 20

func newProgress(w io.Writer, total int64, mode string) *progress {
	on := false
	switch mode {
	case "always":
		on = true
	case "never":
	default:
		if f, ok := w.(*os.File); ok && total >= progressMin {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				on = true
			}
		}
	}
	return &progress{w: w, total: total, on: on, start: time.Now()}
}

func (p *progress) reader(r io.Reader) io.Reader {
	if !p.on {
		return r
	}
	return &progressReader{r, p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}

func (p *progress) add(n int64) {
	p.n += n
	if time.Since(p.last) < 100*time.Millisecond && p.n < p.total {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.n) / float64(p.total)
	}
	const width = 30
	fill := int(frac * width)
	rate := float64(p.n) / time.Since(p.start).Seconds() / (1 << 20)
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %d/%d MiB  %.1f MiB/s ", strings.Repeat("#", fill), strings.Repeat(" ", width-fill),
		frac*100, p.n>>20, p.total>>20, rate)
}

func (p *progress) done() {
	if p.on {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
